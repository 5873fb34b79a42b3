"""The model card: one markdown page that says what data, code and settings made a model, and how it scores.

`render_model_card(info)` takes a plain dict the caller assembles from asset metadata. Every key is
optional; a missing section renders as "not recorded" so a partial run still gets a card. Shape:

    {
      "model_name": str, "run_id": str, "code_version": str, "created": str,
      "data_sources": [{"uri": str, "records": int, "bytes": int}],
      "stages": [{"stage": str, "input": int, "kept": int, "removed": int, "documents": int,
                  "reasons": {reason: count}}],              # per curation stage in pipeline order, drop
                                                             # reasons; input: else the stage before's kept;
                                                             # documents: distinct ones, where kept counts rows
      "tokenizer": {"vocab_size": int, "train_tokens": int, "validation_tokens": int,
                    "bytes_per_token": float, ...},           # any further keys are listed as given
      "model_config": {name: value},                          # e.g. n_layer, d_model, context, parameters
      "training": {"curve_png": str, "steps": int, "final_train_loss": float, "final_val_loss": float, ...},
      "scores": {task: {"acc": float, "acc_norm": float, "n": int}},
      "generative": {task: {"exact_match": float, "contains": float, "n": int}},  # greedy open answers
      "question_vs_cloze": [{"model": str, "task": str, "fact": str, "question_acc": float,
                             "cloze_acc": float, "gap": float, "n": int}],   # `cloze.question_vs_cloze`
      "scores_png": str,                                      # bar plot from `cli.bar_plot`
      "perplexity": {"perplexity": float, "bits_per_byte": float, "tokens": int, ...},
      "sensitivity": {task: {"acc_min": float, "acc_max": float, "acc_spread": float,
                             "cloze_acc": float}},                  # cloze_acc where the task has a cloze form
      "contamination": {"n": int, "documents_scanned": int,
                        "tasks": {task: {"items": int, "contaminated": int,
                                         "clean_acc": float, "contaminated_acc": float}}},
      "lineage": [{"asset": str, "code_version": str, "run_id": str, "materialized_at": str}],
      "notes": [str],                                         # stages skipped or not measured, and why
    }
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

NOT_RECORDED = "_not recorded_"
SPECIAL_TOKEN_TEXT_NOTE = (
    "Special-token text in user content (`<|end|>`, `<|user|>`, ...) is encoded here as ordinary text. The "
    "Hugging Face export's chat template refuses such content, and a plain `tokenizer(text)` call on the export "
    "parses it into control tokens unless given `split_special_tokens=True`.")


def lineage_order(parents: Mapping[str, Collection[str]], asset: str) -> list[str]:
    """Every asset upstream of `asset` in the graph `parents` (asset -> the assets it reads), farthest first:
    each one after all it reads, ties by name; the card's lineage lists them in this order."""
    ancestors: set[str] = set()
    frontier = [asset]
    while frontier:
        for parent in parents.get(frontier.pop(), ()):
            if parent not in ancestors and parent != asset:
                ancestors.add(parent)
                frontier.append(parent)
    readers = {a: [c for c in (*ancestors, asset) if a in parents.get(c, ())] for a in ancestors}

    @functools.cache
    def steps_to_asset(node: str) -> int:  # the longest path from `node` down to `asset`
        return 0 if node == asset else 1 + max(steps_to_asset(reader) for reader in readers[node])

    return sorted(ancestors, key=lambda a: (-steps_to_asset(a), a))


def training_section(metrics: dict[str, Any]) -> dict[str, Any]:
    """The card's training figures from a checkpoint's `metrics.json`."""
    return {"curve_png": metrics.get("loss_curve"), "steps": metrics.get("steps"),
            "final_train_loss": metrics.get("train_loss"), "final_val_loss": metrics.get("val_loss"),
            "tokens_seen": metrics.get("tokens_seen"), "parameters": metrics.get("parameters")}


def evaluation_sections(results: dict[str, Any]) -> dict[str, Any]:
    """The card's scores, open answers, question-vs-cloze, perplexity, sensitivity and contamination from
    `scoreboard.score_models`' `results.json`; tasks are named `model/task`."""
    models = results["models"]

    def per_task(section: str) -> dict:
        return {f"{model}/{task}": s for model, entry in models.items() for task, s in entry.get(section, {}).items()}

    return {"scores": {f"{model}/{task}": s for model, entry in models.items()
                       for task, s in entry["scores"].items()},
            "generative": per_task("generative"), "question_vs_cloze": results.get("question_vs_cloze"),
            "perplexity": models.get("base", {}).get("perplexity"), "sensitivity": per_task("sensitivity"),
            "contamination": results.get("contamination")}


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_fmt(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _key_values(values: dict[str, Any]) -> str:
    return _table(["setting", "value"], sorted(_flatten(values).items()))


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as one row each (`rope.theta`), so no cell holds a whole dict."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = ", ".join(map(str, value)) if isinstance(value, list | tuple) else value
    return flat


def _stages(stages: list[dict]) -> str:
    inputs = _stage_inputs(stages)
    out = [_table(["stage", "input", "kept", "removed", "drop rate", "note"],
                  ([s.get("stage"), n, s.get("kept"), s.get("removed"), _rate(s.get("removed"), n), _stage_note(s, n)]
                   for s, n in zip(stages, inputs, strict=True)))]
    reason_rows = [[s.get("stage"), reason, count, _rate(count, n)]
                   for s, n in zip(stages, inputs, strict=True)
                   for reason, count in sorted((s.get("reasons") or {}).items(), key=lambda kv: -kv[1])]
    if reason_rows:
        out += ["", "Filters (documents removed per reason, as a share of the stage's input):", "",
                _table(["stage", "reason", "removed", "drop rate"], reason_rows)]
    return "\n".join(out)


def _stage_inputs(stages: list[dict]) -> list[int | None]:
    """Each stage's input: what it says, else what the stage before it kept (stages are in pipeline order),
    else its kept plus removed."""
    inputs, previous = [], None
    for stage in stages:
        inputs.append(stage["input"] if stage.get("input") is not None else
                      previous if previous is not None else _input(stage))
        previous = stage.get("kept")
    return inputs


def _stage_note(stage: dict, given: int | None) -> str:
    """Why kept + removed is not the input: the mixture counts rows, and source weights repeat documents."""
    kept, removed, documents = stage.get("kept"), stage.get("removed") or 0, stage.get("documents")
    if given is None or kept is None or kept + removed == given:
        return ""
    if documents is not None and documents != kept:
        return (f"kept counts rows: {documents:,} distinct documents, source weights repeat some (upsampling) "
                "and sample others")
    return f"kept + removed = {kept + removed:,}, not the input"
def _input(stage: dict) -> int | None:
    if stage.get("input") is not None:
        return stage["input"]
    if stage.get("kept") is not None and stage.get("removed") is not None:
        return stage["kept"] + stage["removed"]
    return None


def _rate(part: int | None, whole: int | None) -> str:
    if part is None or not whole:
        return "–"
    return f"{100.0 * part / whole:.1f}%"


def render_model_card(info: dict[str, Any], image_link: Callable[[str], str] | None = None) -> str:
    """Markdown for the model card described by `info` (shape in the module docstring). `image_link` maps an
    image's file path to what the card links (default: the path), e.g. a `data:` URI for a browser."""
    link = image_link or str
    name = info.get("model_name") or "model"
    parts = [f"# Model card: {name}", ""]
    facts = {k: info[k] for k in ("run_id", "code_version", "created") if info.get(k)}
    if facts:
        parts += [_table(["", ""], facts.items()), ""]
    if info.get("notes"):
        parts += ["## Notes", "", *(f"- {note}" for note in info["notes"]), ""]

    parts += ["## Training data", "", "### Sources", ""]
    sources = info.get("data_sources") or []
    parts += [_table(["source", "records", "bytes"], ([s.get("uri"), s.get("records"), s.get("bytes")]
                                                       for s in sources)) if sources else NOT_RECORDED, ""]
    parts += ["### Curation stages", ""]
    parts += [_stages(info["stages"]) if info.get("stages") else NOT_RECORDED, ""]

    parts += ["## Tokenizer", "", _key_values(info["tokenizer"]) if info.get("tokenizer") else NOT_RECORDED, "",
              SPECIAL_TOKEN_TEXT_NOTE, ""]
    parts += ["## Model", "", _key_values(info["model_config"]) if info.get("model_config") else NOT_RECORDED, ""]

    parts += ["## Training", ""]
    training = dict(info.get("training") or {})
    curve = training.pop("curve_png", None)
    if curve:
        parts += [f"![training curves]({link(curve)})", ""]
    parts += [_key_values(training) if training else ("" if curve else NOT_RECORDED), ""]

    parts += ["## Evaluation", ""]
    scores = info.get("scores") or {}
    if scores:
        parts += [_table(["benchmark", "acc", "acc_norm", "n"],
                         ([task, s.get("acc"), s.get("acc_norm"), s.get("n")] for task, s in sorted(scores.items()))),
                  ""]
    else:
        parts += [NOT_RECORDED, ""]
    if info.get("generative"):
        parts += ["Open questions, greedy answers (exact match of the first line; answer contained in the reply):",
                  "", _table(["benchmark", "exact_match", "contains", "n"],
                             ([task, s.get("exact_match"), s.get("contains"), s.get("n")]
                              for task, s in sorted(info["generative"].items()))), ""]
    if info.get("question_vs_cloze"):
        rows = info["question_vs_cloze"]
        first: dict = {}
        for row in rows:
            first.setdefault(row.get("model"), row.get("task"))
        # per fact for each model's first (whole) task; over all facts for its other tasks (the splits)
        shown = [r for r in rows if r.get("fact") == "all" or r.get("task") == first[r.get("model")]]
        parts += ["What the model knows versus what it answers: the same facts and choices asked as a question "
                  "and stated as a cloze (`{person} was born in` → the choices); gap = cloze − question:", "",
                  _table(["model", "benchmark", "fact", "question acc", "cloze acc", "gap", "n"],
                         ([r.get("model"), r.get("task"), r.get("fact"), r.get("question_acc"), r.get("cloze_acc"),
                           r.get("gap"), r.get("n")] for r in shown)), ""]
    if info.get("scores_png"):
        parts += [f"![benchmark scores]({link(info['scores_png'])})", ""]
    if info.get("perplexity"):
        parts += ["Validation perplexity:", "", _key_values(info["perplexity"]), ""]
    if info.get("sensitivity"):
        parts += ["Prompt sensitivity (accuracy across prompt formats; cloze: the same facts stated as a cloze):",
                  "", _table(["benchmark", "min", "max", "spread", "cloze"],
                             ([task, s.get("acc_min"), s.get("acc_max"), s.get("acc_spread"), s.get("cloze_acc")]
                              for task, s in sorted(info["sensitivity"].items()))), ""]

    parts += ["## Contamination", ""]
    contamination = info.get("contamination") or {}
    if contamination.get("tasks"):
        parts += [f"Items sharing a {contamination.get('n', 13)}-word sequence with the training data "
                  f"({_fmt(contamination.get('documents_scanned'))} documents scanned):", "",
                  _table(["benchmark", "items", "contaminated", "share", "clean acc", "contaminated acc"],
                         ([task, t.get("items"), t.get("contaminated"), _rate(t.get("contaminated"), t.get("items")),
                           t.get("clean_acc"), t.get("contaminated_acc")]
                          for task, t in sorted(contamination["tasks"].items()))), ""]
    else:
        parts += [NOT_RECORDED, ""]

    parts += ["## Lineage", ""]
    lineage = info.get("lineage") or []
    parts += [_table(["asset", "code version", "run id", "materialized at"],
                     ([a.get("asset"), a.get("code_version"), a.get("run_id"), a.get("materialized_at")]
                      for a in lineage)) if lineage else NOT_RECORDED, ""]
    return "\n".join(parts).rstrip() + "\n"
