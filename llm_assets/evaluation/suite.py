"""The benchmark suite: every benchmark file read once into the tasks that all checkpoints are scored on.

`suite.json` holds the multiple-choice tasks (`tasks.load_suite`), their few-shot pools, and the
open-question tasks (`generative.load_open_suite`), so scoring never re-reads or re-parses a file.
"""

from __future__ import annotations

import json
from pathlib import Path

from llm_assets.evaluation.generative import is_open_question_file, load_open_suite
from llm_assets.evaluation.tasks import load_fewshot, load_suite


def build_suite(files: list[Path], templates: dict[str, str]) -> dict:
    """The suite of `files`: open-question files become open tasks, the others multiple-choice tasks
    rendered with `templates` (`{file: template}`) and their shot pools."""
    open_files = [f for f in files if is_open_question_file(f)]
    choice_files = [f for f in files if f not in open_files]
    return {"files": [str(f) for f in choice_files], "tasks": load_suite(choice_files, templates=templates),
            "fewshot": load_fewshot(choice_files), "open_files": [str(f) for f in open_files],
            "open_tasks": load_open_suite(open_files)}


def write_suite(suite: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(suite))
    return path


def read_suite(path: Path) -> tuple[dict, dict, dict]:
    """The suite's tasks, their shot pools and its open-question tasks (the last two empty in a suite written
    before they were recorded)."""
    suite = json.loads(path.read_text())
    return suite["tasks"], suite.get("fewshot", {}), suite.get("open_tasks", {})


def malformed_tasks(tasks: dict[str, list[dict]]) -> list[str]:
    """The tasks with no items or with an item whose gold index is not one of its choices."""
    return [task for task, items in tasks.items()
            if not items or any(not 0 <= item["gold"] < len(item["choices"]) for item in items)]
