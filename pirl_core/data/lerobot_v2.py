"""LeRobot dataset format v2.0 / v2.1 metadata, for `lerobot_format.read_dataset`.

The layout (huggingface/lerobot before v3.0; physical-intelligence/libero, the paper's LIBERO SFT
data, is published in it):

    meta/info.json        codebase_version "v2.0" | "v2.1", fps, total_episodes, total_frames,
                          total_tasks, total_chunks, chunks_size, data_path
                          ("data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"),
                          video_path, features (as v3.0)
    meta/episodes.jsonl   one JSON object per line: episode_index, tasks (list of str), length
    meta/tasks.jsonl      one JSON object per line: task_index, task
    meta/stats.json       (v2.0) or meta/episodes_stats.jsonl (v2.1, per episode; not read)
    data/chunk-XXX/episode_YYYYYY.parquet   one episode per file, columns as v3.0

Episode e lies in chunk e // chunks_size. The frames' columns and image structs are the same as in
v3.0, so the reader's episode/frame code is shared; only where an episode lives differs
(`data/path` in the episode rows returned here).
"""

from __future__ import annotations

import json
from pathlib import Path

from pirl_core.data.lerobot_format import check_episode_rows

EPISODES_JSONL = "meta/episodes.jsonl"
TASKS_JSONL = "meta/tasks.jsonl"


def _jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (LeRobot v2.x keeps its metadata there)")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: not a JSON object ({e.msg})") from None
    return rows


def _read_tasks(root: Path) -> list[str]:
    rows = _jsonl(root / TASKS_JSONL)
    if any("task_index" not in r or "task" not in r for r in rows):
        raise ValueError(f"{root / TASKS_JSONL}: every line needs task_index and task")
    pairs = sorted((r["task_index"], r["task"]) for r in rows)
    if [i for i, _ in pairs] != list(range(len(pairs))):
        raise ValueError(f"{root / TASKS_JSONL}: task_index is not 0..{len(pairs) - 1}")
    return [str(t) for _, t in pairs]


def read_v2_meta(root: Path, info: dict) -> tuple[list[str], list[dict]]:
    """(task strings by task_index, episode rows by episode_index with their "data/path")."""
    tasks = _read_tasks(root)
    rows = _jsonl(root / EPISODES_JSONL)
    missing = [k for k in ("episode_index", "tasks", "length") if rows and k not in rows[0]]
    if missing:
        raise ValueError(f"{root / EPISODES_JSONL}: episode lines lack {missing}")
    check_episode_rows(rows, info, root, EPISODES_JSONL)
    chunks_size = int(info.get("chunks_size", 1000))
    for r in rows:
        e = r["episode_index"]
        r["data/path"] = info["data_path"].format(episode_chunk=e // chunks_size,
                                                  episode_index=e)
    return tasks, rows
