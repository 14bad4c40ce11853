"""Tested code of Runnable Notes: one module per article, each importable and standalone."""
