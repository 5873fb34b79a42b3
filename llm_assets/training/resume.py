"""Resume only the same run: a checkpoint folder remembers the inputs it was trained from."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import torch

from llm_assets.lake import read_json
from llm_assets.training.callbacks import LAST_CHECKPOINT

log = logging.getLogger(__name__)
FINGERPRINT = "inputs.json"


# timings and dates a writer may record next to content (old shard manifests stored "seconds"): a rerun of the
# same data changes them, so they must not decide whether training resumes
VOLATILE_KEYS = frozenset({"seconds", "training_seconds", "created", "started", "finished"})


def json_content_digest(path: str | os.PathLike, volatile: frozenset[str] = VOLATILE_KEYS) -> str:
    """sha256 of a JSON file's content without its `volatile` keys (at any depth), key order ignored."""
    value = read_json(path, f"{path} does not exist; materialize the asset that writes it first")

    def content(v):
        if isinstance(v, dict):
            return {k: content(x) for k, x in v.items() if k not in volatile}
        if isinstance(v, list):
            return [content(x) for x in v]
        return v

    return hashlib.sha256(json.dumps(content(value), sort_keys=True).encode()).hexdigest()


def reset_if_inputs_changed(out_dir: str | os.PathLike, inputs: dict) -> bool:
    """Delete a stale `last.ckpt` when `inputs` (config and data digests) differ from the ones it was
    trained from, so a rematerialization after an upstream change starts fresh while a retry after a crash
    resumes. Records `inputs` in the folder. Returns True when a stale checkpoint was removed."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    record = out / FINGERPRINT
    wanted = json.loads(json.dumps(inputs, sort_keys=True, default=str))
    previous = json.loads(record.read_text()) if record.exists() else None
    stale = previous != wanted and (out / LAST_CHECKPOINT).exists()
    if stale:
        changed = sorted(k for k in set(wanted) | set(previous or {}) if (previous or {}).get(k) != wanted.get(k))
        log.info("inputs of %s changed since its last.ckpt (%s); starting fresh", out, ", ".join(changed))
        (out / LAST_CHECKPOINT).unlink()
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps(wanted, indent=2, sort_keys=True))
    os.replace(tmp, record)
    return stale


def unreadable_reason(path: Path) -> str | None:
    """Why `path` cannot be resumed from (truncated, foreign, or a pickle that weights-only loading refuses),
    or None when it loads; the tensors are mapped, not read."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # torch raises several types for truncated, foreign or crafted files
        return " ".join(str(err).split())[:300] or type(err).__name__
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        return "not a Lightning checkpoint (no state_dict)"
    return None


def resumable_checkpoint(out_dir: str | os.PathLike, resume: bool, is_global_zero: bool,
                         emit: Callable[[str], None]) -> tuple[str | None, str | None]:
    """(the `last.ckpt` to resume from or None, what was set aside or None).

    An unreadable `last.ckpt` is renamed `last.ckpt.corrupt-<UTC time>` and training starts fresh, said in the
    log and the metrics: kept for inspection, while a rerun (a schedule, a retry) no longer fails on it forever.
    Only global rank zero renames; another rank that finds the file unreadable or gone starts fresh as well.
    """
    path = Path(out_dir) / LAST_CHECKPOINT
    if not resume or not path.is_file():
        return None, None
    reason = unreadable_reason(path)
    if reason is None:
        return str(path), None
    if not is_global_zero:
        return None, None
    aside = path.with_name(f"{LAST_CHECKPOINT}.corrupt-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}")
    os.replace(path, aside)
    note = f"{path} is unreadable ({reason}); set aside as {aside.name}, training from scratch"
    log.warning(note)
    emit(note)
    return None, f"{aside}: {reason}"
