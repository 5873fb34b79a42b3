"""Training programs (pretrain, sft) and their data, checks and callbacks."""

from __future__ import annotations

import os
from pathlib import Path


def error_path(config_path: str | os.PathLike) -> Path:
    """Where a failed training run leaves its one-line error for its launcher: next to its config file."""
    config_path = Path(config_path)
    return config_path.with_name(config_path.name + ".error")
