"""The `site` fixture: a fresh fixture site per test."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixture_site import Site


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path / "site-src")
