"""Benchmark files in every supported format, and lm-eval-harness task definitions that read them locally.

For each format (`tasks` module table) `write_parity_tasks` writes random items as the published dataset
lays them out (the files `evaluate` reads, plus a fewshot split where lm-eval's task has one) and a task YAML
for lm-eval that loads the same items from disk (`dataset_path: json`, no hub access) and renders them with
the official task's `doc_to_text` / `doc_to_choice` / `doc_to_target` / splits / sampler / description /
`process_docs` (HellaSwag's is lm-eval's own function, imported, not restated). Used by the parity bench and
test: both sides score the same items, so contexts, log-likelihoods and decisions can be compared item by item.

The ICL format has no official task; its mirror is "the query as written, then `\\nAnswer:`", with shots
drawn from the evaluated split itself (`fewshot_split` = the test split, so lm-eval leaves the item out of
its own shots, as `evaluate` does).
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path

WORDS = ["river", "stone", "capital", "city", "founded", "museum", "bridge", "tower", "harbor", "island",
         "mountain", "valley", "forest", "painter", "poet", "engineer", "chemist", "physicist", "novel",
         "symphony", "treaty", "empire", "republic", "railway", "university", "library", "cathedral", "market",
         "festival", "winter", "summer", "northern", "southern", "ancient", "modern"]
FORMATS = ("icl", "arc", "hellaswag", "piqa", "mmlu")
MMLU_SUBJECT = "high_school_geography"


@dataclass
class ParityTask:
    """One format's files: `files` are what `evaluate` is given, `lm_eval_task` the YAML task name."""

    format: str
    our_task: str
    files: list[Path]
    lm_eval_task: str
    n_items: int


def _phrase(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def _distinct(rng: random.Random, n: int, lo: int, hi: int, prefix: str = "") -> list[str]:
    out: list[str] = []
    while len(out) < n:
        text = prefix + _phrase(rng, lo, hi)
        if text not in out:
            out.append(text)
    return out


def _question(rng: random.Random) -> str:
    return _phrase(rng, 4, 12).capitalize() + "?"


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _arc_rows(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        k = rng.randint(3, 5)
        labels = list("ABCDE"[:k]) if rng.random() < 0.8 else [str(j + 1) for j in range(k)]
        rows.append({"id": f"parity_{i}", "question": _question(rng),
                     "choices": {"text": _distinct(rng, k, 1, 4), "label": labels},
                     "answerKey": rng.choice(labels)})
    return rows


def _hellaswag_rows(rng: random.Random, n: int, split: str) -> list[dict]:
    rows = []
    for i in range(n):
        ctx_a = _phrase(rng, 5, 12) + "."
        # WikiHow items carry "[title]"/"[header]" markup that lm-eval's preprocessing rewrites
        if rng.random() < 0.3:
            ctx_a = f"[header] {_phrase(rng, 2, 4)} [title] {ctx_a}"
        ctx_b = _phrase(rng, 1, 4) if rng.random() < 0.8 else ""
        endings = _distinct(rng, 4, 3, 9, prefix="[step] " if rng.random() < 0.2 else "")
        rows.append({"ind": i, "activity_label": _phrase(rng, 1, 2).capitalize(), "ctx_a": ctx_a, "ctx_b": ctx_b,
                     "ctx": (ctx_a + " " + ctx_b).strip(), "endings": endings, "source_id": f"parity~{i}",
                     "split": split, "split_type": "indomain", "label": str(rng.randrange(4))})
    return rows


def _piqa_rows(rng: random.Random, n: int) -> list[dict]:
    return [{"goal": _phrase(rng, 4, 10).capitalize(), **dict(zip(("sol1", "sol2"), _distinct(rng, 2, 3, 10),
                                                                  strict=True)), "label": rng.randrange(2)}
            for _ in range(n)]


def _mmlu_rows(rng: random.Random, n: int) -> list[dict]:
    # a leading space in some questions exercises the official template's question.strip()
    return [{"question": (" " if rng.random() < 0.2 else "") + _question(rng), "subject": MMLU_SUBJECT,
             "choices": _distinct(rng, 4, 1, 4), "answer": rng.randrange(4)} for _ in range(n)]


def _icl_rows(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for _ in range(n):
        k = rng.randint(2, 5)
        rows.append({"query": "Question: " + _question(rng), "choices": _distinct(rng, k, 1, 4),
                     "gold": rng.randrange(k)})
    return rows


_METRICS = """metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
"""


def _yaml(name: str, data_files: dict[str, Path], body: str) -> str:
    files = "".join(f"    {split}: {json.dumps(str(path))}\n" for split, path in data_files.items())
    return (f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n{files}"
            f"output_type: multiple_choice\n{body}{_METRICS}")


def write_parity_tasks(folder: str | Path, n_items: int = 40, n_train: int = 30, seed: int = 0,
                       formats: tuple[str, ...] = FORMATS) -> tuple[list[ParityTask], Path]:
    """Write each format's files under `folder/data` and lm-eval YAMLs under `folder/lm_eval_tasks`.

    Returns the tasks and the YAML folder (give it to `lm_eval.tasks.TaskManager(include_path=...)`).
    """
    folder = Path(folder)
    data, yamls = folder / "data", folder / "lm_eval_tasks"
    data.mkdir(parents=True, exist_ok=True)
    yamls.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    out: list[ParityTask] = []
    for fmt in formats:
        name = f"parity_{fmt}"
        if fmt == "icl":
            test = _jsonl(data / "icl_parity.jsonl", _icl_rows(rng, n_items))
            body = ('test_split: test\nfewshot_split: test\ndoc_to_text: "{{query}}\\nAnswer:"\n'
                    'doc_to_choice: "{{choices}}"\ndoc_to_target: "{{gold}}"\n')
            yaml = _yaml(name, {"test": test}, body)
            out.append(ParityTask(fmt, test.stem, [test], name, n_items))
        elif fmt == "arc":
            test = _jsonl(data / "ARC-Parity-Test.jsonl", _arc_rows(rng, n_items))
            train = _jsonl(data / "ARC-Parity-Train.jsonl", _arc_rows(rng, n_train))
            body = ('training_split: train\ntest_split: test\ndoc_to_text: "Question: {{question}}\\nAnswer:"\n'
                    'doc_to_target: "{{choices.label.index(answerKey)}}"\ndoc_to_choice: "{{choices.text}}"\n')
            yaml = _yaml(name, {"train": train, "test": test}, body)
            out.append(ParityTask(fmt, test.stem, [test], name, n_items))
        elif fmt == "hellaswag":
            test = _jsonl(data / "hellaswag_val.jsonl", _hellaswag_rows(rng, n_items, "val"))
            train = _jsonl(data / "hellaswag_train.jsonl", _hellaswag_rows(rng, n_train, "train"))
            # lm-eval's own process_docs, imported from the installed package
            (yamls / "parity_hellaswag_utils.py").write_text(
                "from lm_eval.tasks.hellaswag.utils import process_docs  # noqa: F401\n")
            body = ('training_split: train\nvalidation_split: validation\ntest_split: null\n'
                    'process_docs: !function parity_hellaswag_utils.process_docs\n'
                    'doc_to_text: "{{query}}"\ndoc_to_target: "{{label}}"\ndoc_to_choice: "choices"\n')
            yaml = _yaml(name, {"train": train, "validation": test}, body)
            out.append(ParityTask(fmt, test.stem, [test], name, n_items))
        elif fmt == "piqa":
            test = _jsonl(data / "piqa_valid.jsonl", _piqa_rows(rng, n_items))
            train = _jsonl(data / "piqa_train.jsonl", _piqa_rows(rng, n_train))
            body = ('training_split: train\nvalidation_split: validation\ntest_split: null\n'
                    'doc_to_text: "Question: {{goal}}\\nAnswer:"\ndoc_to_target: label\n'
                    'doc_to_choice: "{{[sol1, sol2]}}"\n')
            yaml = _yaml(name, {"train": train, "validation": test}, body)
            out.append(ParityTask(fmt, test.stem, [test], name, n_items))
        elif fmt == "mmlu":
            rows, dev_rows = _mmlu_rows(rng, n_items), _mmlu_rows(rng, 5)
            test = data / f"{MMLU_SUBJECT}_test.csv"
            for path, part in ((test, rows), (data / f"{MMLU_SUBJECT}_dev.csv", dev_rows)):
                with path.open("w", newline="", encoding="utf-8") as handle:
                    csv.writer(handle).writerows([r["question"], *r["choices"], "ABCD"[r["answer"]]] for r in part)
            # lm-eval reads the hub's layout of the same rows: {question, subject, choices, answer}
            hub = data / "mmlu_hub"
            hub.mkdir(exist_ok=True)
            test_json, dev_json = _jsonl(hub / "test.jsonl", rows), _jsonl(hub / "dev.jsonl", dev_rows)
            description = json.dumps("The following are multiple choice questions (with answers) about "
                                     f"{MMLU_SUBJECT.replace('_', ' ')}.\n\n")
            body = ('test_split: test\nfewshot_split: dev\nfewshot_config:\n  sampler: first_n\n'
                    f'description: {description}\n'
                    'doc_to_text: "{{question.strip()}}\\nA. {{choices[0]}}\\nB. {{choices[1]}}\\nC. '
                    '{{choices[2]}}\\nD. {{choices[3]}}\\nAnswer:"\n'
                    'doc_to_choice: ["A", "B", "C", "D"]\ndoc_to_target: answer\n')
            yaml = _yaml(name, {"test": test_json, "dev": dev_json}, body)
            out.append(ParityTask(fmt, test.stem, [test], name, n_items))
        else:
            raise ValueError(f"unknown format {fmt!r}; one of {FORMATS}")
        (yamls / f"{name}.yaml").write_text(yaml, encoding="utf-8")
    return out, yamls


def lm_eval_samples(results: dict, task: str) -> dict[int, dict]:
    """Per doc_id: `{"contexts": [..], "continuations": [..], "loglikelihoods": [..], "acc", "acc_norm"}` from
    `lm_eval.simple_evaluate(..., log_samples=True)` results."""
    out = {}
    for sample in results["samples"][task]:
        args = sample["arguments"]
        if isinstance(args, dict):  # {"gen_args_0": {"arg_0": ctx, "arg_1": cont}, ...}
            pairs = [(a["arg_0"], a["arg_1"]) for a in args.values()]
        else:
            pairs = [(a[0], a[1]) for a in args]
        out[int(sample["doc_id"])] = {
            "contexts": [p[0] for p in pairs], "continuations": [p[1] for p in pairs],
            "loglikelihoods": [float(r[0]) for r in sample["filtered_resps"]],
            "acc": float(sample["acc"]), "acc_norm": float(sample["acc_norm"])}
    return out
