"""Demonstration data in the LeRobot dataset format, pinned to v3.0 (see lerobot_format.py)."""

from pirl_core.data.lerobot_format import (
    CODEBASE_VERSION, LIBERO_PI_KEY_MAP, LeRobotData, read_dataset,
)
from pirl_core.data.lerobot_writer import LeRobotWriter

__all__ = ["CODEBASE_VERSION", "LIBERO_PI_KEY_MAP", "LeRobotData", "LeRobotWriter", "read_dataset"]
