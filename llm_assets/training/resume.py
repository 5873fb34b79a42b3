"""Resume only the same run: a checkpoint folder remembers the inputs it was trained from."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

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
