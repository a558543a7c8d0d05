"""LeRobot dataset format v3.0: the pinned layout and the reader (the writer is lerobot_writer.py;
v2.0 / v2.1 metadata, which the reader also takes, is read in lerobot_v2.py).

Layout, as written by huggingface/lerobot (src/lerobot/datasets/utils.py, lerobot_dataset.py,
compute_stats.py, v30/convert_dataset_v21_to_v30.py):

    meta/info.json        codebase_version "v3.0", robot_type, fps, total_episodes, total_frames,
                          total_tasks, chunks_size, data_files_size_in_mb, video_files_size_in_mb,
                          splits {"train": "0:N"}, data_path, video_path (null without videos),
                          features {name: {dtype, shape, names}}
    meta/tasks.parquet    pandas frame: index = task string, column task_index (int64)
    meta/episodes/chunk-XXX/file-YYY.parquet   one row per episode: episode_index, tasks (list of
                          str), length, data/chunk_index, data/file_index, dataset_from_index,
                          dataset_to_index, videos/<key>/{chunk_index, file_index, from_timestamp,
                          to_timestamp}, stats/<feature>/<stat>,
                          meta/episodes/{chunk_index, file_index}
    meta/stats.json       {feature: {min, max, mean, std, count}}; images per channel [3, 1, 1]
    data/chunk-XXX/file-YYY.parquet   many episodes per file, one column per feature: scalars
                          (shape [1]) plain, vectors fixed_size_list, images struct {bytes, path}
                          holding PNG bytes (Hugging Face datasets' Image storage)
    videos/<key>/chunk-XXX/file-YYY.mp4        features of dtype "video" (not decoded here)

Shapes: T frames of one episode, N frames of the dataset, D vector dim, H W C image (uint8, C last).
Scalar features (shape [1]) come back as [T], as LeRobot's Value columns do.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

CODEBASE_VERSION = "v3.0"
V2_VERSIONS = ("v2.0", "v2.1")  # one parquet file per episode, jsonl metadata: lerobot_v2.py
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
EPISODES_PATH = f"{EPISODES_DIR}/{CHUNK_FILE}.parquet"
DATA_PATH = f"data/{CHUNK_FILE}.parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE + ".mp4"
DEFAULT_CHUNK_SIZE = 1000  # files per chunk folder
DEFAULT_DATA_FILE_SIZE_IN_MB = 100
DEFAULT_VIDEO_FILE_SIZE_IN_MB = 500
DEFAULT_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
EPISODE_COLUMNS = ("episode_index", "tasks", "length", "data/chunk_index", "data/file_index",
                   "dataset_from_index", "dataset_to_index")

# physical-intelligence/libero (openpi's convert_libero_data_to_lerobot.py: fps 10, robot "panda")
# names its features image, wrist_image (256x256x3 images), state (8 floats), actions (7 floats).
# It is published as codebase v2.0, which `read_dataset` reads as it is (as it reads the same data
# converted to v3.0): read it with key_map=LIBERO_PI_KEY_MAP.
LIBERO_PI_KEY_MAP = {
    "image": "observation.images.image",
    "wrist_image": "observation.images.wrist_image",
    "state": "observation.state",
    "actions": "action",
}


def data_file_path(root: Path, info: dict, chunk_index: int, file_index: int) -> Path:
    return root / info["data_path"].format(chunk_index=chunk_index, file_index=file_index)


def decode_image(blob: bytes) -> np.ndarray:
    """PNG (or any PIL-readable) bytes -> [H, W, C] array, pixel values untouched."""
    with Image.open(io.BytesIO(blob)) as img:
        arr = np.asarray(img)
    return arr[..., None] if arr.ndim == 2 else arr


def _column_to_numpy(col: pa.ChunkedArray, ft: dict, where: str) -> np.ndarray:
    """One parquet column -> [N, *shape] (scalars [N]); images decoded to uint8 [N, H, W, C]."""
    arr = col.combine_chunks()
    n = len(arr)
    if ft["dtype"] == "image":
        if not pa.types.is_struct(arr.type) or arr.type.get_field_index("bytes") < 0:
            raise ValueError(f"{where}: expected an image struct {{bytes, path}}, found {arr.type}")
        blobs = arr.field("bytes").to_pylist()
        if any(b is None for b in blobs):
            raise ValueError(f"{where}: images without embedded bytes (path only) are not read")
        return np.stack([decode_image(b) for b in blobs]) if n else np.zeros((0, 0, 0, 0), np.uint8)
    if arr.null_count:
        raise ValueError(f"{where}: {arr.null_count} null values")
    while pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type) \
            or pa.types.is_fixed_size_list(arr.type):
        arr = arr.flatten()
    out = arr.to_numpy(zero_copy_only=False)
    shape = tuple(ft["shape"])
    try:
        out = out.reshape(n) if shape == (1,) else out.reshape(n, *shape)
    except ValueError:
        raise ValueError(f"{where}: {out.size} values for {n} frames of shape {shape}") from None
    return out if ft["dtype"] == "string" else out.astype(ft["dtype"], copy=False)


@dataclass
class LeRobotData:
    """An opened dataset (v3.0 or v2.x). Feature names are key-mapped; `info` is the raw
    info.json."""

    root: Path
    info: dict
    tasks: list[str]  # by task_index
    episodes: list[dict]  # by episode_index; LeRobot's columns, stats/... left out
    stats: dict[str, dict[str, np.ndarray]]
    columns: dict[str, str] = field(repr=False)  # feature name -> column name in the files

    @property
    def fps(self) -> float:
        return self.info["fps"]

    @property
    def num_frames(self) -> int:
        return int(self.info["total_frames"])

    @property
    def feature_names(self) -> list[str]:
        return list(self.columns)

    @property
    def features(self) -> dict[str, dict]:
        return {name: self.info["features"][col] for name, col in self.columns.items()}

    def task_of_episode(self, i: int) -> str:
        tasks = self.episodes[i]["tasks"]
        if len(tasks) != 1:
            raise ValueError(f"episode {i} has {len(tasks)} tasks {tasks}; use its task_index")
        return tasks[0]

    def _check_keys(self, keys: list[str], images: bool) -> None:
        for key in keys:
            if key not in self.columns:
                raise KeyError(f"{key!r} is not a feature of {self.root} ({self.feature_names})")
            dtype = self.features[key]["dtype"]
            if dtype == "video":
                raise ValueError(
                    f"{self.root}: feature {key!r} is stored as mp4 video "
                    f"({self.info['video_path']})"
                    " and this reader does not decode video: no decoder (PyAV 'av', torchvision) is"
                    " installed in the pirl environment. Leave it out of `keys`.")
            if dtype == "image" and not images:
                raise ValueError(f"{key!r} is an image feature; read it per episode with episode()")

    def episode_file(self, i: int) -> Path:
        """The data file holding episode i (v2.x: one file per episode, named in "data/path")."""
        ep = self.episodes[i]
        if "data/path" in ep:
            return self.root / ep["data/path"]
        return data_file_path(self.root, self.info, ep["data/chunk_index"], ep["data/file_index"])

    def data_files(self) -> list[Path]:
        """The data files holding the episodes, in episode order, each once."""
        return list(dict.fromkeys(self.episode_file(i) for i in range(len(self.episodes))))

    def episode(self, i: int, keys: list[str] | None = None) -> dict[str, np.ndarray]:
        """All frames of episode i: {feature: [T, ...]}, images uint8 [T, H, W, C]."""
        if not 0 <= i < len(self.episodes):
            raise IndexError(f"episode {i} out of range: {self.root} has {len(self.episodes)}")
        keys = self.feature_names if keys is None else list(keys)
        self._check_keys(keys, images=True)
        ep = self.episodes[i]
        path = self.episode_file(i)
        table = pq.read_table(path, columns=[self.columns[k] for k in keys],
                              filters=[("episode_index", "=", i)])
        if table.num_rows != ep["length"]:
            raise ValueError(f"{path}: {table.num_rows} frames of episode {i}, its metadata says "
                             f"{ep['length']}")
        return {k: _column_to_numpy(table.column(self.columns[k]), self.features[k],
                                    f"{path} [{self.columns[k]}]") for k in keys}

    def frames(self, keys: list[str] | None = None) -> dict[str, np.ndarray]:
        """Non-image features over the whole dataset, in `index` order: {feature: [N, ...]}."""
        if keys is None:
            keys = [k for k, ft in self.features.items() if ft["dtype"] not in ("image", "video")]
        self._check_keys(keys, images=False)
        tables = [pq.read_table(p, columns=[self.columns[k] for k in keys])
                  for p in self.data_files()]
        table = pa.concat_tables(tables)
        if table.num_rows != self.num_frames:
            raise ValueError(f"{self.root}: data files hold {table.num_rows} frames, "
                             f"{INFO_PATH} says {self.num_frames}")
        return {k: _column_to_numpy(table.column(self.columns[k]), self.features[k],
                                    f"{self.root} [{self.columns[k]}]") for k in keys}


def _feature_columns(features: dict, key_map: dict[str, str] | None, where: Path) -> dict[str, str]:
    key_map = dict(key_map or {})
    unknown = sorted(set(key_map) - set(features))
    if unknown:
        raise ValueError(f"{where}: key_map renames {unknown}, which are not features "
                         f"({sorted(features)})")
    if set(key_map) & set(DEFAULT_FEATURES):
        raise ValueError(f"key_map may not rename LeRobot's features {sorted(DEFAULT_FEATURES)}")
    columns = {key_map.get(col, col): col for col in features}
    if len(columns) != len(features):
        raise ValueError(f"{where}: key_map {key_map} makes two features share a name")
    return columns


def _read_tasks(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (LeRobot v3.0 keeps its task strings there)")
    df = pd.read_parquet(path)
    if "task_index" not in df.columns:
        raise ValueError(f"{path}: no 'task_index' column (columns: {list(df.columns)})")
    names = df["task"] if "task" in df.columns else df.index  # LeRobot: the task is the index
    pairs = sorted(zip(df["task_index"].tolist(), names.tolist()))
    if [i for i, _ in pairs] != list(range(len(pairs))):
        raise ValueError(f"{path}: task_index is not 0..{len(pairs) - 1}")
    return [str(t) for _, t in pairs]


def _read_episodes(root: Path, info: dict) -> list[dict]:
    paths = sorted((root / EPISODES_DIR).glob("chunk-*/file-*.parquet"))
    if not paths:
        raise FileNotFoundError(f"{root / EPISODES_DIR}: no chunk-*/file-*.parquet files")
    rows = []
    for path in paths:
        names = pq.read_schema(path).names
        missing = [c for c in EPISODE_COLUMNS if c not in names]
        if missing:
            raise ValueError(f"{path}: episodes metadata lacks columns {missing}")
        cols = [c for c in names if not c.startswith("stats/")]
        rows += pq.read_table(path, columns=cols).to_pylist()
    return check_episode_rows(rows, info, root, EPISODES_DIR)


def check_episode_rows(rows: list[dict], info: dict, root: Path, where: str) -> list[dict]:
    """Episode rows sorted by episode_index, checked to be 0..N-1 and to add up to info.json's
    episode and frame counts (`where`: the metadata they came from, for the error)."""
    rows.sort(key=lambda r: r["episode_index"])
    if [r["episode_index"] for r in rows] != list(range(len(rows))):
        raise ValueError(f"{root / where}: episode_index is not 0..{len(rows) - 1}")
    frames = sum(r["length"] for r in rows)
    if (len(rows), frames) != (info["total_episodes"], info["total_frames"]):
        raise ValueError(f"{root}: {len(rows)} episodes of {frames} frames in {where}, "
                         f"{INFO_PATH} says {info['total_episodes']} of {info['total_frames']}")
    return rows


def read_dataset(root: str | Path, key_map: dict[str, str] | None = None) -> LeRobotData:
    """Open and validate a LeRobot v3.0 (or v2.0 / v2.1) dataset. key_map renames features
    ({stored: new})."""
    root = Path(root)
    info_path = root / INFO_PATH
    if not info_path.is_file():
        raise FileNotFoundError(f"{info_path}: missing; {root} is not a LeRobot dataset")
    info = json.loads(info_path.read_text())
    version = info.get("codebase_version")
    if version not in (CODEBASE_VERSION, *V2_VERSIONS):
        raise ValueError(f"{info_path}: codebase_version {version!r}; this reader knows "
                         f"{CODEBASE_VERSION!r} and {V2_VERSIONS}")
    for key in ("fps", "features", "data_path", "total_episodes", "total_frames"):
        if key not in info:
            raise ValueError(f"{info_path}: no {key!r} entry")
    columns = _feature_columns(info["features"], key_map, info_path)
    if version == CODEBASE_VERSION:
        tasks, episodes = _read_tasks(root / TASKS_PATH), _read_episodes(root, info)
    else:
        from pirl_core.data.lerobot_v2 import read_v2_meta

        tasks, episodes = read_v2_meta(root, info)
    data = LeRobotData(root, info, tasks, episodes, {}, columns)
    stored = [k for k, ft in info["features"].items() if ft["dtype"] != "video"]
    for path in data.data_files():
        if not path.is_file():
            raise FileNotFoundError(f"{path}: data file named by the episodes metadata is missing")
        names = set(pq.read_schema(path).names)
        for key in stored:
            if key not in names:
                raise ValueError(f"{path}: no column for feature {key!r} declared in {INFO_PATH}")
    if (root / STATS_PATH).is_file():
        raw = json.loads((root / STATS_PATH).read_text())
        inverse = {col: name for name, col in columns.items()}
        data.stats = {inverse.get(k, k): {s: np.asarray(v) for s, v in d.items()}
                      for k, d in raw.items()}
    return data
