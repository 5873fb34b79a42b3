"""Benchmark files as evaluation tasks: suites named by file, and the few-shot pools lm-eval would use.

Items are read by `llm_assets.benchmarks` (formats, templates, errors). Few-shot examples come from the
split lm-eval takes them from, when it sits beside the file: MMLU's `<subject>_dev.csv` (in the same folder
or in `../dev/`, the published layout), and for the JSONL formats the file named like this one with
`train` in place of `test`/`val`/`valid`/`validation`/`dev`. Without one, shots are drawn from the task's
own items, never the item itself.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from llm_assets.benchmarks import FORMAT, BenchmarkFormatError, Item, load_items

log = logging.getLogger(__name__)

SPLITS = ("sft", "heldout")  # a file whose items carry one of these `split`s also yields a task per split
_SPLIT_WORDS = ("test", "validation", "valid", "val", "dev")


def fewshot_file(path: str | Path) -> Path | None:
    """The file lm-eval's matching task takes its shots from, when it sits beside `path` (module doc)."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        subject_stem = re.sub(r"_(test|val)$", "", path.stem)
        if subject_stem == path.stem:
            return None
        candidates = [path.with_name(f"{subject_stem}_dev.csv"),
                      path.parent.parent / "dev" / f"{subject_stem}_dev.csv"]
    else:
        pattern = re.compile(r"(?i)(?<![a-z])(" + "|".join(_SPLIT_WORDS) + r")(?![a-z])")
        matches = list(pattern.finditer(path.stem))
        if not matches:
            return None
        last = matches[-1]
        word = last.group(1)
        train = "TRAIN" if word.isupper() else "Train" if word[0].isupper() else "train"
        stem = path.stem[:last.start()] + train + path.stem[last.end():]
        candidates = [path.with_name(stem + path.suffix)]
    return next((c for c in candidates if c.is_file() and c.resolve() != path.resolve()), None)


def load_fewshot(files: list[str | Path]) -> dict[str, dict]:
    """Shot pools by task name: `{"file", "sampler", "items"}` for each file with a fewshot file beside it."""
    pools: dict[str, dict] = {}
    for file in files:
        path = Path(file)
        shots = fewshot_file(path)
        if shots is None:
            continue
        items = load_items(shots)
        fmt = FORMAT[items[0]["format"]]
        pool = {"file": str(shots), "sampler": fmt.sampler, "exclude_item": fmt.exclude_item_from_pool,
                "items": items}
        log.info("shots for %s come from %s (%d items, sampler %s)", path.stem, shots, len(items), pool["sampler"])
        pools[path.stem] = pool
    return pools


def load_suite(files: list[str | Path], templates: dict[str, str] | None = None) -> dict[str, list[Item]]:
    """Tasks named by file stem; a file whose items carry `split` also yields `<stem>_sft`, `<stem>_heldout`.

    `templates` maps a file (as given) to the template its items use instead of their format's default.
    """
    suite: dict[str, list[Item]] = {}
    templates = {str(Path(k)): v for k, v in (templates or {}).items()}
    for file in files:
        path = Path(file)
        items = load_items(path)
        if str(path) in templates:
            for item in items:
                item["template"] = templates[str(path)]
        names = {path.stem: items}
        if any("split" in item for item in items):
            for split in SPLITS:
                subset = [item for item in items if item.get("split") == split]
                if subset:
                    names[f"{path.stem}_{split}"] = subset
        for name, task_items in names.items():
            if name in suite:
                raise BenchmarkFormatError(f"{path}: task name {name!r} is already taken by another file")
            suite[name] = task_items
        log.info("loaded %d %s items from %s", len(items), items[0]["format"], path)
    return suite
