"""Wall time of each pipeline stage, read from the executed notebooks papermill wrote.

    .venv/bin/python benchmarks/pipeline_time.py [notebooks/executed]

Prints one line per executed notebook (its stage, start time, minutes) and the total: the
preset's measured wall time on this machine, summed over the stages that last ran, even when
they ran in different sessions. The executed notebooks are committed beside results/, so the
figure on a fresh clone is the one of the runs whose results it holds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def stage_minutes(folder: Path) -> list[tuple[str, str, float]]:
    """(notebook, start time, minutes) per executed notebook, in start order."""
    rows = []
    for path in sorted(folder.glob("*.ipynb")):
        meta = json.loads(path.read_text())["metadata"].get("papermill", {})
        if meta.get("duration") is None:  # still running, or failed
            print(f"{path.stem}: not finished, left out")
            continue
        rows.append((path.stem, meta["start_time"][:19], meta["duration"] / 60))
    return sorted(rows, key=lambda r: r[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default="notebooks/executed", type=Path)
    args = parser.parse_args()
    rows = stage_minutes(args.folder)
    if not rows:
        raise SystemExit(f"no executed notebooks in {args.folder}")
    for name, start, minutes in rows:
        print(f"{name:32s} {start}  {minutes:7.1f} min")
    print(f"{'total':32s} {'':19s}  {sum(r[2] for r in rows):7.1f} min")


if __name__ == "__main__":
    main()
