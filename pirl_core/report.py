"""Report helpers: tables as CSV + Markdown and figures as byte-stable PNGs under results/.

Every table and figure in results/ is written by a pipeline stage through these functions, so a
rerun with the same inputs gives the same bytes (no timestamps, fixed float formatting).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Sequence


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_table(rows: Sequence[dict], stem: str | Path, title: str, source: str) -> None:
    """Write `stem`.csv and `stem`.md; `source` says which run / benchmark / scale made the rows."""
    if not rows:
        raise ValueError(f"no rows to write for table {stem}")
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    cols = list(rows[0])
    with stem.with_suffix(".csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, cols, lineterminator="\n")
        writer.writeheader()
        writer.writerows({c: _fmt(r[c]) for c in cols} for r in rows)
    lines = [f"# {title}", "", source, "", "| " + " | ".join(cols) + " |",
             "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r[c]) for c in cols) + " |" for r in rows]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")


def write_json(data: Any, path: str | Path) -> None:
    """Pretty, key-sorted JSON (stable across reruns)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def save_figure(fig: Any, path: str | Path, dpi: int = 120) -> None:
    """Save a matplotlib figure without the metadata that would change between reruns."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, metadata={"Software": None}, bbox_inches="tight")


def report_index(items: dict[str, dict], root: str | Path = ".") -> list[dict[str, str]]:
    """Rows of the report's index: each paper item, its files, and "done" when every file exists
    under `root`, else "pending: <why>" (items as in pirl_core/data/report_items.yaml)."""
    rows = []
    for key, item in items.items():
        missing = [p for p in item["ours"] if not (Path(root) / p).is_file()]
        status = "done" if not missing else f"pending: {item['pending']}"
        rows.append({"item": key, "paper": item["paper"], "ours": ", ".join(item["ours"]),
                     "status": status})
    return rows
