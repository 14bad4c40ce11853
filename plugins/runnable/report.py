"""The execution report: which pages ran and why, which came from the cache, how long each took.

`report_data` is what `<site_dir>/runnable/report.json` holds; `report_markdown` is the
site's readable page built from the same data.
"""

from __future__ import annotations

import os

from .engine import Outcome

STATUS_NAMES = {"executed": "已执行", "cached": "缓存", "skipped": "未执行（RUNNABLE_OFF）"}


def report_data(outcomes: dict[str, Outcome], environment: dict) -> dict:
    pages = [
        {
            "page": o.page,
            "status": o.status,
            "seconds": round(o.seconds, 3),
            "fences": len(o.fences),
            "reason": o.reason,  # None unless executed
            "changes": o.changes if o.status == "executed" else [],
        }
        for o in sorted(outcomes.values(), key=lambda o: o.page)
    ]
    totals = {
        "pages": len(pages),
        "fences": sum(p["fences"] for p in pages),
        "seconds": round(sum(p["seconds"] for p in pages), 3),
        **{status: sum(p["status"] == status for p in pages) for status in STATUS_NAMES},
    }
    return {
        "pages": pages,
        "totals": totals,
        "environment": {**environment, "cpu_count": os.cpu_count()},
    }


def report_markdown(data: dict, *, links: dict[str, str]) -> str:
    """The report page; `links` maps a page path to its URL relative to the report."""
    lines = [
        "# 执行报告",
        "",
        "本站每个代码块都在构建时运行过。下表列出本次构建中含可执行代码块的每个页面："
        "“已执行”表示本次构建运行了它的代码，“缓存”表示代码及其依赖自上次运行以来未变，"
        "直接复用了上次的输出。耗时是代码实际运行的秒数（缓存页面显示首次运行时的耗时）。"
        "“原因”说明已执行的页面为什么没能用缓存。",
        "",
        "| 页面 | 状态 | 原因 | 代码块 | 耗时（秒） |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    for page in data["pages"]:
        name = f"[{page['page']}]({links[page['page']]})" if page["page"] in links else page["page"]
        status = STATUS_NAMES[page["status"]]
        reason = "；".join(_reason_zh(change) for change in page.get("changes") or [])
        lines.append(
            f"| {name} | {status} | {reason or '—'} | {page['fences']} | {page['seconds']:.2f} |"
        )
    totals = data["totals"]
    lines += [
        f"| **合计** | 已执行 {totals['executed']}，缓存 {totals['cached']} | "
        f"| {totals['fences']} | {totals['seconds']:.2f} |",
        "",
        "## 运行环境",
        "",
        "| 项目 | 值 |",
        "| --- | --- |",
        *[f"| {key} | `{value}` |" for key, value in data["environment"].items()],
        "",
        '机器可读的同一份数据：<a href="report.json">report.json</a>。',
        "",
    ]
    return "\n".join(lines)


def _reason_zh(change: dict) -> str:
    """One change (see reasons.py) as the report page says it."""
    kind = change["kind"]
    if kind == "forced":
        return f"强制执行（`{change['by']}`）"
    if kind == "fence":
        part = "代码" if change["part"] == "code" else "执行选项"
        return f"第 {change['fence']} 个代码块的{part}变了"
    if kind == "fences":
        return f"代码块有增删（{change['old']} → {change['new']} 个）"
    if kind == "file":
        verb = {"changed": "变了", "added": "新增依赖", "removed": "不再依赖"}[change["change"]]
        return f"`{change['file']}` {verb}" if verb == "变了" else f"{verb} `{change['file']}`"
    if kind == "package":
        return f"`{change['name']}` {change['old']} → {change['new']}"
    return {
        "new": "缓存中还没有它的结果",
        "pruned": "缓存条目已被清理",
        "corrupt": "缓存条目损坏",
        "plugin": "插件代码变了",
        "seed_policy": "随机种子策略变了",
    }.get(kind, "缓存键变了（旧版插件写的缓存）")
