"""Write demonstrations as a LeRobot v3.0 dataset (layout and reader: lerobot_format.py).

As LeRobot does, each add_episode appends one row group to the open data file (so one episode is
read back without reading its neighbours) and a new file starts once data_files_size_in_mb is
reached. Everything goes to `<root>.tmp`, which finalize() renames to `<root>`: a crash leaves only
the .tmp folder, never a root that looks complete. Per-episode stats follow LeRobot's
compute_stats.py (min, max, mean, std, count; images per channel in [0, 1], shape [C, 1, 1]) and are
aggregated with the same parallel-variance formula; they are computed over every frame here,
where LeRobot samples up to 10k images per episode. PNGs are written at compress level 1
(lossless; 3x faster than level 6 for a few % more bytes).

Shapes: T frames, D vector dim, H W C image (uint8, C last).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from pirl_core.data.lerobot_format import (
    CODEBASE_VERSION, DATA_PATH, DEFAULT_CHUNK_SIZE, DEFAULT_DATA_FILE_SIZE_IN_MB,
    DEFAULT_FEATURES, DEFAULT_VIDEO_FILE_SIZE_IN_MB, EPISODES_PATH, INFO_PATH, STATS_PATH,
    TASKS_PATH,
)

NUMERIC_DTYPES = ("float32", "float64", "int32", "int64", "bool")
IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])  # HF datasets Image()


def encode_png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def _check_features(features: dict) -> dict:
    out = {}
    for name, ft in features.items():
        dtype, shape = ft.get("dtype"), [int(s) for s in ft.get("shape", ())]
        if "/" in name or name in DEFAULT_FEATURES:
            raise ValueError(f"feature name {name!r}: no '/' and none of {list(DEFAULT_FEATURES)}")
        if dtype == "image":
            if len(shape) != 3 or shape[2] not in (1, 3):
                raise ValueError(f"image {name!r}: shape must be (H, W, C), C 1 or 3: {shape}")
        elif dtype not in NUMERIC_DTYPES:
            raise ValueError(f"feature {name!r}: dtype {dtype!r} not writable here (write one of "
                             f"{NUMERIC_DTYPES} or 'image'; video encoding is not implemented)")
        elif len(shape) != 1 or shape[0] < 1:
            raise ValueError(f"feature {name!r}: shape must be (D,), got {shape}")
        out[name] = {"dtype": dtype, "shape": shape, "names": ft.get("names")}
    return {**out, **DEFAULT_FEATURES}


def _arrow_type(ft: dict) -> pa.DataType:
    if ft["dtype"] == "image":
        return IMAGE_TYPE
    scalar = pa.from_numpy_dtype(np.dtype(ft["dtype"]))
    return scalar if ft["shape"] == [1] else pa.list_(scalar, ft["shape"][0])


def _hf_feature(ft: dict) -> dict:
    """The entry HF datasets keeps in the parquet schema metadata, as LeRobot's files have."""
    if ft["dtype"] == "image":
        return {"_type": "Image"}
    value = {"dtype": ft["dtype"], "_type": "Value"}
    return value if ft["shape"] == [1] else {"feature": value, "length": ft["shape"][0],
                                             "_type": "Sequence"}


def _stats(x: np.ndarray, image: bool) -> dict[str, np.ndarray]:
    """Per-episode stats of one feature: [T, ...] -> each stat [D] ([1] for scalars, [C, 1, 1])."""
    if image:  # exact, from per-channel histograms of the uint8 pixels (fast on long episodes)
        levels = np.arange(256) / 255.0
        hists = [np.bincount(x[..., c].ravel(), minlength=256) for c in range(x.shape[-1])]
        mean = np.array([h @ levels / h.sum() for h in hists])
        out = {"min": np.array([levels[h.nonzero()[0][0]] for h in hists]),
               "max": np.array([levels[h.nonzero()[0][-1]] for h in hists]), "mean": mean,
               "std": np.sqrt([h @ (levels - m) ** 2 / h.sum() for h, m in zip(hists, mean)])}
        out = {k: s.reshape(-1, 1, 1) for k, s in out.items()}
    else:
        v = x.astype(np.float64).reshape(len(x), -1)
        out = {"min": v.min(0), "max": v.max(0), "mean": v.mean(0), "std": v.std(0)}
    return {**out, "count": np.array([len(x)])}


def aggregate_stats(stats: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Pool per-episode stats of one feature (count-weighted mean, parallel variance)."""
    counts = np.array([s["count"][0] for s in stats], dtype=np.float64)
    means = np.stack([s["mean"] for s in stats])
    w = counts.reshape(-1, *[1] * (means.ndim - 1))
    mean = (means * w).sum(0) / counts.sum()
    variances = np.stack([s["std"] for s in stats]) ** 2
    var = ((variances + (means - mean) ** 2) * w).sum(0) / counts.sum()
    return {"min": np.stack([s["min"] for s in stats]).min(0),
            "max": np.stack([s["max"] for s in stats]).max(0),
            "mean": mean, "std": np.sqrt(var), "count": np.array([int(counts.sum())])}


class LeRobotWriter:
    """Collects episodes into <root>.tmp; finalize() writes the metadata and renames to root."""

    def __init__(self, root: str | Path, fps: int, features: dict, robot_type: str,
                 data_files_size_in_mb: float = DEFAULT_DATA_FILE_SIZE_IN_MB) -> None:
        self.root = Path(root)
        self.tmp = self.root.with_name(self.root.name + ".tmp")
        self._check_root_free()
        if self.tmp.exists():
            raise FileExistsError(f"{self.tmp} exists (an unfinished write?); remove it first")
        self.fps, self.robot_type = fps, robot_type
        self.features = _check_features(features)
        self.data_files_size_in_mb = data_files_size_in_mb
        hf = {"info": {"features": {k: _hf_feature(ft) for k, ft in self.features.items()}}}
        self.schema = pa.schema([(k, _arrow_type(ft)) for k, ft in self.features.items()],
                                metadata={"huggingface": json.dumps(hf)})
        self.tasks: dict[str, int] = {}
        self.episodes: list[dict] = []
        self.stats: list[dict[str, dict]] = []
        self.num_frames = 0
        self._chunk = self._file = self._file_bytes = 0
        self._parquet: pq.ParquetWriter | None = None
        self._finalized = False
        self.tmp.mkdir(parents=True)

    def _check_root_free(self) -> None:
        if self.root.exists() and (not self.root.is_dir() or any(self.root.iterdir())):
            raise FileExistsError(f"{self.root} exists and is not empty; the writer never "
                                  "overwrites data")

    def _column(self, key: str, x: np.ndarray, t: int) -> pa.Array:
        ft = self.features[key]
        if ft["dtype"] == "image":
            if x.dtype != np.uint8 or x.shape != (t, *ft["shape"]):
                raise ValueError(f"{key!r}: expected uint8 {(t, *ft['shape'])}, got {x.dtype} "
                                 f"{x.shape}")
            return pa.array([{"bytes": encode_png(img), "path": f"frame-{j:06d}.png"}
                             for j, img in enumerate(x)], type=IMAGE_TYPE)
        if ft["shape"] == [1] and x.shape == (t,):
            x = x[:, None]
        if x.shape != (t, *ft["shape"]) or not np.can_cast(x.dtype, ft["dtype"], "same_kind"):
            raise ValueError(f"{key!r}: expected {ft['dtype']} {(t, *ft['shape'])}, got {x.dtype} "
                             f"{x.shape}")
        x = np.ascontiguousarray(x, dtype=ft["dtype"])
        if ft["shape"] == [1]:
            return pa.array(x[:, 0])
        return pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), ft["shape"][0])

    def add_episode(self, frames: dict[str, np.ndarray], task: str) -> None:
        """frames: {feature: [T, ...]} for every feature given to the constructor."""
        if self._finalized:
            raise RuntimeError(f"{self.root}: add_episode after finalize")
        if not isinstance(task, str) or not task:
            raise ValueError(f"task must be a non-empty string, got {task!r}")
        user = [k for k in self.features if k not in DEFAULT_FEATURES]
        missing, extra = sorted(set(user) - set(frames)), sorted(set(frames) - set(user))
        if missing or extra:
            raise ValueError(f"episode keys: missing {missing}, unexpected {extra}")
        arrays = {k: np.asarray(frames[k]) for k in user}
        lengths = {k: len(x) for k, x in arrays.items()}
        t = lengths[user[0]]
        if t == 0 or len(set(lengths.values())) != 1:
            raise ValueError(f"episode lengths must be equal and positive: {lengths}")
        ep = len(self.episodes)
        task_index = self.tasks.get(task, len(self.tasks))  # registered once the episode is valid
        arrays.update(timestamp=(np.arange(t) / self.fps).astype(np.float32),
                      frame_index=np.arange(t), episode_index=np.full(t, ep),
                      index=np.arange(self.num_frames, self.num_frames + t),
                      task_index=np.full(t, task_index))
        table = pa.Table.from_arrays([self._column(k, arrays[k], t) for k in self.features],
                                     schema=self.schema)
        self.tasks.setdefault(task, task_index)
        full = self._file_bytes + table.nbytes >= self.data_files_size_in_mb * 1024**2
        if self._parquet is not None and full:
            self._parquet.close()
            self._parquet, self._file_bytes = None, 0
            last = self._file == DEFAULT_CHUNK_SIZE - 1  # LeRobot's update_chunk_file_indices
            self._chunk, self._file = ((self._chunk + 1, 0) if last
                                       else (self._chunk, self._file + 1))
        if self._parquet is None:
            path = self.tmp / DATA_PATH.format(chunk_index=self._chunk, file_index=self._file)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._parquet = pq.ParquetWriter(path, self.schema, compression="snappy")
        self._parquet.write_table(table)
        self._file_bytes += table.nbytes
        self.stats.append({k: _stats(x, self.features[k]["dtype"] == "image")
                           for k, x in arrays.items()})
        self.episodes.append({"episode_index": ep, "tasks": [task], "length": t,
                              "data/chunk_index": self._chunk, "data/file_index": self._file,
                              "dataset_from_index": self.num_frames,
                              "dataset_to_index": self.num_frames + t})
        self.num_frames += t

    def finalize(self) -> Path:
        """Write meta/ (info, tasks, episodes, stats) and move <root>.tmp to <root>."""
        if self._finalized:
            raise RuntimeError(f"{self.root}: finalize called twice")
        if not self.episodes:
            raise ValueError(f"{self.root}: no episodes to write")
        self._parquet.close()
        (self.tmp / "meta").mkdir()
        tasks = pd.DataFrame({"task_index": list(self.tasks.values())}, index=list(self.tasks))
        tasks.to_parquet(self.tmp / TASKS_PATH)
        rows = []
        for ep, ep_stats in zip(self.episodes, self.stats):
            flat = {f"stats/{k}/{s}": v.tolist() for k, d in ep_stats.items() for s, v in d.items()}
            rows.append({**ep, **flat,
                         "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
        path = self.tmp / EPISODES_PATH.format(chunk_index=0, file_index=0)
        path.parent.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows), path, compression="snappy")
        stats = {k: {s: v.tolist() for s, v in aggregate_stats([e[k] for e in self.stats]).items()}
                 for k in self.features}
        (self.tmp / STATS_PATH).write_text(json.dumps(stats, indent=4))
        info = {
            "codebase_version": CODEBASE_VERSION, "robot_type": self.robot_type,
            "total_episodes": len(self.episodes), "total_frames": self.num_frames,
            "total_tasks": len(self.tasks), "chunks_size": DEFAULT_CHUNK_SIZE,
            "data_files_size_in_mb": self.data_files_size_in_mb,
            "video_files_size_in_mb": DEFAULT_VIDEO_FILE_SIZE_IN_MB, "fps": self.fps,
            "splits": {"train": f"0:{len(self.episodes)}"}, "data_path": DATA_PATH,
            "video_path": None, "features": self.features,
        }
        (self.tmp / INFO_PATH).write_text(json.dumps(info, indent=4, ensure_ascii=False))
        self._check_root_free()
        if self.root.exists():
            self.root.rmdir()
        self.tmp.rename(self.root)
        self._finalized = True
        return self.root
