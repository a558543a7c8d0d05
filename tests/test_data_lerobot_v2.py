"""LeRobot v2.0 reader on a dataset hand-built to physical-intelligence/libero's exact schema.

That dataset (openpi's examples/libero/convert_libero_data_to_lerobot.py, LeRobot codebase v2.0)
holds 1,693 episodes of 40 LIBERO tasks at 10 fps: `image` and `wrist_image` (256 x 256 x 3 PNG
image structs), `state` (8 floats), `actions` (7 floats) and LeRobot's bookkeeping columns, one
parquet file per episode under data/chunk-XXX/, tasks and episodes in jsonl files.
"""

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pirl_core.data import LIBERO_PI_KEY_MAP, read_dataset

SIDE = 256
TASKS = ["pick up the black bowl between the plate and the ramekin and place it on the plate",
         "open the middle drawer of the cabinet"]
LENGTHS, TASK_OF_EP = [3, 2, 4], [0, 1, 0]
IMAGE = {"dtype": "image", "shape": [SIDE, SIDE, 3], "names": ["height", "width", "channel"]}
FEATURES = {
    "image": IMAGE, "wrist_image": IMAGE,
    "state": {"dtype": "float32", "shape": [8], "names": ["state"]},
    "actions": {"dtype": "float32", "shape": [7], "names": ["actions"]},
    **{k: {"dtype": d, "shape": [1], "names": None} for k, d in [
        ("timestamp", "float32"), ("frame_index", "int64"), ("episode_index", "int64"),
        ("index", "int64"), ("task_index", "int64")]},
}
IMG = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
SCHEMA = pa.schema([("image", IMG), ("wrist_image", IMG), ("state", pa.list_(pa.float32(), 8)),
                    ("actions", pa.list_(pa.float32(), 7)), ("timestamp", pa.float32()),
                    ("frame_index", pa.int64()), ("episode_index", pa.int64()),
                    ("index", pa.int64()), ("task_index", pa.int64())])


def png(img):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def build_pi_libero(root, rng, chunks_size=1000, drop_episode_file=None):
    info = {"codebase_version": "v2.0", "robot_type": "panda", "total_episodes": len(LENGTHS),
            "total_frames": sum(LENGTHS), "total_tasks": len(TASKS), "total_videos": 0,
            "total_chunks": 1, "chunks_size": chunks_size, "fps": 10,
            "splits": {"train": f"0:{len(LENGTHS)}"},
            "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
            "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/"
                          "episode_{episode_index:06d}.mp4",
            "features": FEATURES}
    (root / "meta").mkdir(parents=True)
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
    (root / "meta/tasks.jsonl").write_text(
        "".join(json.dumps({"task_index": i, "task": t}) + "\n" for i, t in enumerate(TASKS)))
    (root / "meta/episodes.jsonl").write_text("".join(
        json.dumps({"episode_index": e, "tasks": [TASKS[k]], "length": t}) + "\n"
        for e, (t, k) in enumerate(zip(LENGTHS, TASK_OF_EP))))
    episodes, start = [], 0
    for e, (t, k) in enumerate(zip(LENGTHS, TASK_OF_EP)):
        ep = {"image": rng.integers(0, 256, (t, SIDE, SIDE, 3), dtype=np.uint8),
              "wrist_image": rng.integers(0, 256, (t, SIDE, SIDE, 3), dtype=np.uint8),
              "state": rng.normal(size=(t, 8)).astype(np.float32),
              "actions": rng.uniform(-1, 1, (t, 7)).astype(np.float32),
              "timestamp": (np.arange(t) / 10).astype(np.float32), "frame_index": np.arange(t),
              "episode_index": np.full(t, e), "index": np.arange(start, start + t),
              "task_index": np.full(t, k)}
        cols = {key: (pa.array([{"bytes": png(im), "path": None} for im in v], type=IMG)
                      if v.ndim == 4 else
                      pa.FixedSizeListArray.from_arrays(pa.array(v.ravel()), v.shape[1])
                      if v.ndim == 2 else pa.array(v))
                for key, v in ep.items()}
        path = root / info["data_path"].format(episode_chunk=e // chunks_size, episode_index=e)
        path.parent.mkdir(parents=True, exist_ok=True)
        if e != drop_episode_file:
            pq.write_table(pa.Table.from_pydict(cols, schema=SCHEMA), path)
        episodes.append(ep)
        start += t
    actions = np.concatenate([ep["actions"] for ep in episodes])
    (root / "meta/stats.json").write_text(json.dumps(
        {"actions": {"mean": actions.mean(0).tolist(), "std": actions.std(0).tolist()}}))
    return episodes


def test_reads_physical_intelligence_libero_schema(tmp_path):
    episodes = build_pi_libero(tmp_path / "libero", np.random.default_rng(0))
    data = read_dataset(tmp_path / "libero", key_map=LIBERO_PI_KEY_MAP)
    assert data.fps == 10 and data.num_frames == 9 and data.tasks == TASKS
    assert [data.task_of_episode(e) for e in range(3)] == [TASKS[k] for k in TASK_OF_EP]
    assert data.features["observation.images.wrist_image"]["shape"] == [SIDE, SIDE, 3]
    for e, expected in enumerate(episodes):
        got = data.episode(e, keys=["observation.images.image", "observation.images.wrist_image",
                                    "observation.state", "action", "frame_index"])
        assert got["observation.images.image"].shape == (LENGTHS[e], SIDE, SIDE, 3)
        assert got["observation.images.image"].dtype == np.uint8
        assert np.array_equal(got["observation.images.image"], expected["image"])
        assert np.array_equal(got["observation.images.wrist_image"], expected["wrist_image"])
        assert np.array_equal(got["observation.state"], expected["state"])
        assert np.array_equal(got["action"], expected["actions"])
        assert np.array_equal(got["frame_index"], np.arange(LENGTHS[e]))
    flat = data.frames(["action", "index", "task_index"])
    assert np.array_equal(flat["index"], np.arange(9))
    assert np.array_equal(flat["task_index"], np.repeat(TASK_OF_EP, LENGTHS))
    assert data.stats["action"]["mean"].shape == (7,)


def test_episode_chunks_follow_chunks_size(tmp_path):
    episodes = build_pi_libero(tmp_path / "libero", np.random.default_rng(1), chunks_size=2)
    data = read_dataset(tmp_path / "libero")
    assert data.episode_file(2) == tmp_path / "libero/data/chunk-001/episode_000002.parquet"
    assert np.array_equal(data.episode(2, keys=["actions"])["actions"], episodes[2]["actions"])


def test_missing_episode_file_is_named(tmp_path):
    build_pi_libero(tmp_path / "libero", np.random.default_rng(2), drop_episode_file=1)
    with pytest.raises(FileNotFoundError, match="episode_000001.parquet"):
        read_dataset(tmp_path / "libero")


def test_episode_count_mismatch_is_named(tmp_path):
    build_pi_libero(tmp_path / "libero", np.random.default_rng(3))
    lines = (tmp_path / "libero/meta/episodes.jsonl").read_text().splitlines()
    (tmp_path / "libero/meta/episodes.jsonl").write_text("\n".join(lines[:2]) + "\n")
    with pytest.raises(ValueError, match="2 episodes.*says 3"):
        read_dataset(tmp_path / "libero")
