"""LeRobot v3.0 adapter: writer round trip, a dataset hand-built to LeRobot's own schema, errors.

The hand-built dataset mirrors what huggingface/lerobot writes (LeRobotDatasetMetadata and
LeRobotDataset.save_episode in src/lerobot/datasets/lerobot_dataset.py, utils.py): the tasks frame
indexed by task string, an episodes file with stats/... and meta/episodes/... columns, data files of
fixed-size lists, plain scalars and Hugging Face Image structs with PNG bytes and the
"huggingface" schema metadata, several episodes per data file over two files.
"""

import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pirl_core.data import LIBERO_PI_KEY_MAP, LeRobotWriter, read_dataset

FPS = 10
CAM = "observation.images.top"
FEATURES = {
    "observation.state": {"dtype": "float32", "shape": (4,), "names": ["a", "b", "c", "d"]},
    "action": {"dtype": "float32", "shape": (4,), "names": None},
    CAM: {"dtype": "image", "shape": (32, 32, 3), "names": ["height", "width", "channels"]},
}
TASKS = ["pick up the cube", "open the drawer", "pick up the cube"]
LENGTHS = [5, 7, 4]


def make_episode(rng, t, keys=("observation.state", "action", CAM)):
    state, action, cam = keys
    return {state: rng.normal(size=(t, 4)).astype(np.float32),
            action: rng.uniform(-1, 1, size=(t, 4)).astype(np.float32),
            cam: rng.integers(0, 256, size=(t, 32, 32, 3), dtype=np.uint8)}


def write_demo(root, rng, **kwargs):
    writer = LeRobotWriter(root, fps=FPS, features=FEATURES, robot_type="sawyer", **kwargs)
    episodes = [make_episode(rng, t) for t in LENGTHS]
    for ep, task in zip(episodes, TASKS):
        writer.add_episode(ep, task)
    writer.finalize()
    return episodes


def test_round_trip(tmp_path):
    root = tmp_path / "demo"
    episodes = write_demo(root, np.random.default_rng(0))
    assert not (tmp_path / "demo.tmp").exists()
    data = read_dataset(root)

    assert data.tasks == ["pick up the cube", "open the drawer"]
    assert [e["length"] for e in data.episodes] == LENGTHS
    assert data.num_frames == sum(LENGTHS) == data.info["total_frames"]
    assert data.feature_names[:3] == list(FEATURES)
    for i, ep in enumerate(episodes):
        assert data.task_of_episode(i) == TASKS[i]
        got = data.episode(i)
        for key, x in ep.items():
            assert got[key].dtype == x.dtype and np.array_equal(got[key], x), key
        assert np.array_equal(got["frame_index"], np.arange(LENGTHS[i]))
        assert np.allclose(got["timestamp"], np.arange(LENGTHS[i]) / FPS)
        assert (got["episode_index"] == i).all()
        assert (got["task_index"] == data.tasks.index(TASKS[i])).all()
    assert data.episode(1, keys=["action"]).keys() == {"action"}

    flat = data.frames()
    assert CAM not in flat
    assert np.array_equal(flat["index"], np.arange(sum(LENGTHS)))
    assert np.array_equal(flat["episode_index"], np.repeat(np.arange(3), LENGTHS))
    actions = np.concatenate([e["action"] for e in episodes]).astype(np.float64)
    assert np.array_equal(flat["action"], actions.astype(np.float32))
    for stat, fn in [("mean", np.mean), ("std", np.std), ("min", np.min), ("max", np.max)]:
        np.testing.assert_allclose(data.stats["action"][stat], fn(actions, axis=0), rtol=1e-10)
    assert data.stats["action"]["count"].tolist() == [sum(LENGTHS)]
    pixels = np.concatenate([e[CAM] for e in episodes]) / 255.0
    assert data.stats[CAM]["mean"].shape == (3, 1, 1)
    for stat, fn in [("mean", np.mean), ("std", np.std), ("min", np.min), ("max", np.max)]:
        np.testing.assert_allclose(data.stats[CAM][stat][:, 0, 0], fn(pixels, axis=(0, 1, 2)))

    # The files themselves carry LeRobot's schema.
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["video_path"] is None
    assert info["splits"] == {"train": "0:3"} and info["total_tasks"] == 2
    tasks = pd.read_parquet(root / "meta/tasks.parquet")
    assert tasks.loc["open the drawer", "task_index"] == 1
    schema = pq.read_schema(root / "data/chunk-000/file-000.parquet")
    assert schema.field("action").type == pa.list_(pa.float32(), 4)
    assert schema.field(CAM).type == pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    assert schema.field("timestamp").type == pa.float32()
    eps = pd.read_parquet(root / "meta/episodes/chunk-000/file-000.parquet")
    assert list(eps["dataset_from_index"]) == [0, 5, 12]
    assert list(eps["tasks"].iloc[1]) == ["open the drawer"]
    assert list(eps["stats/action/count"].iloc[2]) == [4]


def test_small_file_size_splits_data_files(tmp_path):
    episodes = write_demo(tmp_path / "demo", np.random.default_rng(1), data_files_size_in_mb=1e-3)
    data = read_dataset(tmp_path / "demo")
    assert [e["data/file_index"] for e in data.episodes] == [0, 1, 2]
    for i, ep in enumerate(episodes):
        assert np.array_equal(data.episode(i)[CAM], ep[CAM])
    assert np.array_equal(data.frames(["index"])["index"], np.arange(sum(LENGTHS)))


def test_key_map_renames_libero_keys(tmp_path):
    features = {"image": FEATURES[CAM], "wrist_image": FEATURES[CAM],
                "state": {"dtype": "float32", "shape": (4,)},
                "actions": {"dtype": "float32", "shape": (4,)}}
    writer = LeRobotWriter(tmp_path / "libero", fps=FPS, features=features, robot_type="panda")
    ep = make_episode(np.random.default_rng(2), 6, keys=("state", "actions", "image"))
    writer.add_episode({**ep, "wrist_image": ep["image"][:, ::-1]}, "put the bowl on the plate")
    writer.finalize()

    data = read_dataset(tmp_path / "libero", key_map=LIBERO_PI_KEY_MAP)
    assert {"observation.images.image", "observation.images.wrist_image", "observation.state",
            "action"} <= set(data.feature_names)
    got = data.episode(0)
    assert np.array_equal(got["action"], ep["actions"])
    assert np.array_equal(got["observation.images.wrist_image"], ep["image"][:, ::-1])
    assert data.stats["action"]["mean"].shape == (4,)
    with pytest.raises(ValueError, match="wrist"):
        read_dataset(tmp_path / "libero", key_map={"wrist": "observation.images.wrist"})


# ---- a dataset built by hand to LeRobot's v3.0 schema, without our writer ---------------------


def png(img):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def build_lerobot_dataset(root, rng, version="v3.0", drop_column=None, video=False):
    """3 episodes (lengths 3, 4, 2) of 2 tasks in 2 data files, as LeRobot lays them out."""
    lengths, task_of_ep = [3, 4, 2], [0, 1, 0]
    hf = {"observation.state": {"feature": {"dtype": "float32", "_type": "Value"}, "length": 4,
                                "_type": "Sequence"},
          "action": {"feature": {"dtype": "float32", "_type": "Value"}, "length": 4,
                     "_type": "Sequence"},
          CAM: {"_type": "Image"},
          **{k: {"dtype": d, "_type": "Value"} for k, d in [
              ("timestamp", "float32"), ("frame_index", "int64"), ("episode_index", "int64"),
              ("index", "int64"), ("task_index", "int64")]}}
    features = {k: {"dtype": v["dtype"], "shape": list(v["shape"]), "names": v["names"]}
                for k, v in FEATURES.items()}
    features.update({k: {"dtype": hf[k]["dtype"], "shape": [1], "names": None}
                     for k in ["timestamp", "frame_index", "episode_index", "index", "task_index"]})
    if video:
        features["observation.images.wrist"] = {
            "dtype": "video", "shape": [32, 32, 3], "names": ["height", "width", "channels"],
            "info": {"video.codec": "av1", "video.pix_fmt": "yuv420p", "video.fps": FPS}}
    info = {"codebase_version": version, "robot_type": "panda", "total_episodes": 3,
            "total_frames": 9, "total_tasks": 2, "chunks_size": 1000,
            "data_files_size_in_mb": 100, "video_files_size_in_mb": 500, "fps": FPS,
            "splits": {"train": "0:3"},
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": ("videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
                           if video else None),
            "features": features}
    (root / "meta").mkdir(parents=True)
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
    tasks = ["pick up the cube", "open the drawer"]
    pd.DataFrame({"task_index": [0, 1]}, index=tasks).to_parquet(root / "meta/tasks.parquet")

    frames, rows, start = [], [], 0
    for ep, (t, task) in enumerate(zip(lengths, task_of_ep)):
        ep_frames = {
            "observation.state": rng.normal(size=(t, 4)).astype(np.float32),
            "action": rng.normal(size=(t, 4)).astype(np.float32),
            CAM: rng.integers(0, 256, size=(t, 32, 32, 3), dtype=np.uint8),
            "timestamp": (np.arange(t) / FPS).astype(np.float32), "frame_index": np.arange(t),
            "episode_index": np.full(t, ep), "index": np.arange(start, start + t),
            "task_index": np.full(t, task)}
        frames.append(ep_frames)
        file_index = 0 if ep < 2 else 1
        row = {"episode_index": ep, "tasks": [tasks[task]], "length": t,
               "data/chunk_index": 0, "data/file_index": file_index,
               "dataset_from_index": start, "dataset_to_index": start + t}
        if video:
            row.update({"videos/observation.images.wrist/chunk_index": 0,
                        "videos/observation.images.wrist/file_index": 0,
                        "videos/observation.images.wrist/from_timestamp": start / FPS,
                        "videos/observation.images.wrist/to_timestamp": (start + t) / FPS})
        for key in ("action", "index"):
            x = ep_frames[key].reshape(t, -1).astype(np.float64)
            row.update({f"stats/{key}/{s}": getattr(x, s)(0).tolist()
                        for s in ("min", "max", "mean", "std")})
            row[f"stats/{key}/count"] = [t]
        rows.append({**row, "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
        start += t

    schema = pa.schema([
        ("observation.state", pa.list_(pa.float32(), 4)), ("action", pa.list_(pa.float32(), 4)),
        (CAM, pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        ("timestamp", pa.float32()), ("frame_index", pa.int64()), ("episode_index", pa.int64()),
        ("index", pa.int64()), ("task_index", pa.int64())],
        metadata={"huggingface": json.dumps({"info": {"features": hf}})})
    if drop_column:
        schema = schema.remove(schema.get_field_index(drop_column))
    for file_index, eps in [(0, frames[:2]), (1, frames[2:])]:
        path = root / f"data/chunk-000/file-{file_index:03d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        with pq.ParquetWriter(path, schema, compression="snappy") as writer:
            for ep in eps:  # one row group per episode, as LeRobot's ParquetWriter appends
                cols = {k: (pa.array([{"bytes": png(im), "path": f"frame-{j:06d}.png"}
                                      for j, im in enumerate(v)], type=schema.field(k).type)
                            if k == CAM else
                            pa.FixedSizeListArray.from_arrays(pa.array(v.ravel()), 4)
                            if v.ndim == 2 else pa.array(v))
                        for k, v in ep.items() if k in schema.names}
                writer.write_table(pa.Table.from_pydict(cols, schema=schema))
    eps_path = root / "meta/episodes/chunk-000/file-000.parquet"
    eps_path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), eps_path)
    (root / "meta/stats.json").write_text(json.dumps(
        {"action": {"mean": np.concatenate([f["action"] for f in frames]).mean(0).tolist()}}))
    return frames


def test_reads_dataset_in_lerobots_own_schema(tmp_path):
    frames = build_lerobot_dataset(tmp_path / "ds", np.random.default_rng(3))
    data = read_dataset(tmp_path / "ds")
    assert data.tasks == ["pick up the cube", "open the drawer"]
    assert [data.task_of_episode(i) for i in range(3)] == [
        "pick up the cube", "open the drawer", "pick up the cube"]
    assert data.episodes[2]["data/file_index"] == 1 and "stats/action/min" not in data.episodes[0]
    for i, expected in enumerate(frames):
        got = data.episode(i)
        for key, x in expected.items():
            assert np.array_equal(got[key], x), (i, key)
    flat = data.frames(["action", "index", "task_index"])
    assert np.array_equal(flat["index"], np.arange(9))
    assert np.array_equal(flat["task_index"], np.repeat([0, 1, 0], [3, 4, 2]))
    assert np.array_equal(flat["action"], np.concatenate([f["action"] for f in frames]))
    assert data.stats["action"]["mean"].shape == (4,)


def test_video_feature_is_named_in_the_error(tmp_path):
    frames = build_lerobot_dataset(tmp_path / "ds", np.random.default_rng(4), video=True)
    data = read_dataset(tmp_path / "ds")
    assert np.array_equal(data.episode(0, keys=["action"])["action"], frames[0]["action"])
    assert np.array_equal(data.frames(["index"])["index"], np.arange(9))
    with pytest.raises(ValueError, match="observation.images.wrist.*video"):
        data.episode(0)


# ---- errors ----------------------------------------------------------------------------------


def test_rejects_other_codebase_version(tmp_path):
    build_lerobot_dataset(tmp_path / "ds", np.random.default_rng(5), version="v1.6")
    with pytest.raises(ValueError, match=r"'v1\.6'.*v3\.0") as err:
        read_dataset(tmp_path / "ds")
    assert str(tmp_path / "ds" / "meta" / "info.json") in str(err.value)


def test_missing_feature_column_is_named(tmp_path):
    build_lerobot_dataset(tmp_path / "ds", np.random.default_rng(6), drop_column="action")
    with pytest.raises(ValueError, match=r"file-000\.parquet.*'action'"):
        read_dataset(tmp_path / "ds")


def test_writer_refuses_non_empty_root(tmp_path):
    root = tmp_path / "demo"
    root.mkdir()
    (root / "keep.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="demo"):
        LeRobotWriter(root, fps=FPS, features=FEATURES, robot_type="sawyer")
    assert [p.name for p in root.iterdir()] == ["keep.txt"]
    assert (root / "keep.txt").read_text() == "precious"
    assert not (tmp_path / "demo.tmp").exists()


def test_unfinished_write_leaves_no_dataset(tmp_path):
    root = tmp_path / "demo"
    writer = LeRobotWriter(root, fps=FPS, features=FEATURES, robot_type="sawyer")
    writer.add_episode(make_episode(np.random.default_rng(7), 3), "pick up the cube")
    assert not root.exists()  # a crash here leaves only demo.tmp, which read_dataset rejects
    with pytest.raises(FileNotFoundError, match="info.json"):
        read_dataset(tmp_path / "demo.tmp")
    with pytest.raises(ValueError, match="missing.*'action'"):
        writer.add_episode({k: v for k, v in make_episode(np.random.default_rng(8), 3).items()
                            if k != "action"}, "pick up the cube")
    bad = {**make_episode(np.random.default_rng(9), 3), CAM: np.zeros((3, 32, 32, 3), np.float32)}
    with pytest.raises(ValueError, match="uint8"):
        writer.add_episode(bad, "a task of a rejected episode")
    writer.finalize()
    assert read_dataset(root).tasks == ["pick up the cube"]
