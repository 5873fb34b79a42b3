"""Multiple-choice scoring with lm-eval-harness semantics, batched, sharing forward passes across choices.

Benchmarks (`evaluate_multiple_choice`) and the knowledge questions asked of a base model and of its
assistant (`answer_accuracy`: a base prompt or a chat reply) are scored alike.

For every choice the score is the summed log-probability of the continuation (target delimiter + choice)
given the context. `acc` takes the argmax of the sums; `acc_norm` the argmax after dividing each sum by the
choice's length in characters (the choice text without the delimiter, as lm-eval does).

Tokenization follows lm-eval's causal-model rule: trailing whitespace of the context moves to the
continuation, the whole string is encoded, and the continuation is what follows the context's own
encoding. Sequences longer than the model's window are cut from the left like lm-eval does. Special-token
text in an item (`<|endoftext|>` in a question) is encoded as ordinary text, and counted in a warning.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from llm_assets.benchmarks import FORMAT, QUESTION_TEMPLATE, Item, load_items
from llm_assets.evaluation.adapter import ScoringModel, load_scoring_model, warn_special_token_text
from llm_assets.tokens.special import render_chat

log = logging.getLogger(__name__)

DEFAULT_TEMPLATE = FORMAT["question"].template  # for items that carry no template of their own
LM_EVAL_FEWSHOT_SEED = 1234  # lm-eval's default `fewshot_random_seed`


@dataclass(frozen=True)
class PromptFormat:
    """How an item becomes a context string; `shots` solved examples precede it, drawn like lm-eval draws them.

    `template` fills `{query}` with the item's query; None uses each item's own template (its format's
    lm-eval rendering, see `tasks`). The context is the item's `description` (MMLU's subject line), then
    each shot as question + `target_delimiter` + answer + `fewshot_delimiter`, then the item's question.
    """

    template: str | None = None
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    shots: int = 0
    seed: int = LM_EVAL_FEWSHOT_SEED
    name: str = "default"

    def question(self, item: Item) -> str:
        template = self.template or item.get("template") or DEFAULT_TEMPLATE
        try:
            return template.format(query=item["query"])
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(f"prompt template {template!r}: only {{query}} may be filled, and literal braces "
                             f"are written {{{{ }}}} ({err})") from None


def continuations(item: Item) -> list[str]:
    """What is scored after the target delimiter, per choice: MMLU's letters, else the choice texts."""
    return list(item.get("continuations") or item["choices"])


def answer_text(item: Item) -> str:
    return continuations(item)[item["gold"]]


def _content_ids(items: Sequence[Item]) -> list[int]:
    """Equal ids for items equal in content (lm-eval compares documents, not positions; `doc_id` aside)."""
    seen: dict[str, int] = {}
    return [seen.setdefault(json.dumps({k: v for k, v in item.items() if k != "doc_id"}, sort_keys=True,
                                       default=str), len(seen)) for item in items]


def draw_shots(items: Sequence[Item], shots: int, seed: int = LM_EVAL_FEWSHOT_SEED,
               pool: Sequence[Item] | None = None, sampler: str = "default",
               limit: int | None = None, exclude_item: bool | None = None) -> list[list[Item]]:
    """The solved examples for each of the first `limit` items, in order, the way lm-eval picks them.

    lm-eval keeps one `random.Random(seed)` per task and draws for the documents in order, from the task's
    fewshot split (`pool`) or else from the items themselves. Where the fewshot split is the evaluated split
    (always so without `pool`; with one, when `exclude_item`, as for lm-eval's HellaSwag and PIQA, whose
    fewshot and test splits are both unset) it draws `shots + 1`, removes every copy of the item itself and
    keeps the first `shots` (drawing again from the pool without the item if copies left too few); otherwise
    `rng.sample(pool, shots)`. The `first_n` sampler (MMLU) takes the pool's first `shots` in order.
    """
    count = len(items) if limit is None else min(limit, len(items))
    if shots <= 0:
        return [[] for _ in range(count)]
    same = pool is None
    exclude = same if exclude_item is None else exclude_item or same
    docs = list(items) if same else list(pool)
    need = shots + 1 if exclude and sampler != "first_n" else shots
    if len(docs) < need:
        where = "items in the task" if same else "solved examples in the fewshot file"
        raise ValueError(f"{shots}-shot prompts need at least {need} {where}, got {len(docs)}")
    if sampler not in ("default", "first_n"):
        raise ValueError(f"unknown fewshot sampler {sampler!r}; use 'default' or 'first_n'")
    rng = random.Random(seed)
    ids = _content_ids(docs if same else [*docs, *items[:count]])
    item_ids = ids[:count] if same else ids[len(docs):]
    positions = range(len(docs))
    out = []
    for index in range(count):
        if sampler == "first_n":
            chosen = [i for i in positions if not exclude or ids[i] != item_ids[index]][:shots]
        elif not exclude:
            chosen = rng.sample(positions, shots)
        else:
            chosen = [i for i in rng.sample(positions, shots + 1) if ids[i] != item_ids[index]][:shots]
            if len(chosen) < shots:
                chosen = rng.sample([i for i in positions if ids[i] != item_ids[index]], shots)
        if len(chosen) < shots:
            raise ValueError(f"{shots}-shot prompts: item {index} has only {len(chosen)} other distinct items")
        out.append([docs[i] for i in chosen])
    return out


def render_context(item: Item, shots: Sequence[Item], fmt: PromptFormat) -> str:
    """The full context for `item`: its description, the solved `shots`, then its question."""
    solved = "".join(fmt.question(shot) + fmt.target_delimiter + answer_text(shot) + fmt.fewshot_delimiter
                     for shot in shots)
    return item.get("description", "") + solved + fmt.question(item)


def render_contexts(items: Sequence[Item], fmt: PromptFormat, pool: dict | None = None,
                    limit: int | None = None) -> list[str]:
    """Contexts of the first `limit` items of a task; `pool` is its `tasks.load_fewshot` entry, if any."""
    sampler = (pool or {}).get("sampler") or (FORMAT[items[0].get("format", "question")].sampler if items
                                               else "default")
    if pool is None and sampler == "first_n":
        sampler = "default"  # first_n takes a separate split's canonical examples; within the task, sample
    drawn = draw_shots(items, fmt.shots, fmt.seed, pool=pool["items"] if pool else None, sampler=sampler,
                       limit=limit, exclude_item=bool(pool and pool.get("exclude_item")))
    return [render_context(item, shots, fmt) for item, shots in zip(items, drawn, strict=False)]


def encode_pair(model: ScoringModel, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Context and continuation token ids, split the way lm-eval splits them for causal models."""
    if not context:
        # an empty context is conditioned on the end-of-text token alone
        cont = model.encode(continuation, add_special_tokens=False)
        if cont and cont[0] == model.eot_token_id:
            return cont[:1], cont[1:]
        return [model.eot_token_id], cont
    stripped = context.rstrip()
    n_spaces = len(context) - len(stripped)
    if n_spaces:
        context, continuation = stripped, context[-n_spaces:] + continuation
    whole = model.encode(context + continuation)
    context_ids = model.encode(context)
    return context_ids, whole[len(context_ids):]


@dataclass
class _Sequence:
    tokens: list[int]
    # (request index, first predicted position, continuation ids)
    uses: list[tuple[int, int, list[int]]] = field(default_factory=list)


def _plan_sequences(encoded: list[tuple[list[int], list[int]]], max_length: int) -> list[_Sequence]:
    """One model input per distinct token string; a request whose tokens are a prefix of another's is
    scored from that longer input (e.g. all one-token choices of an item share one forward pass)."""
    sequences: list[_Sequence] = []
    by_context: dict[tuple[int, ...], list[tuple[list[int], _Sequence]]] = {}
    order = sorted(range(len(encoded)), key=lambda i: -(len(encoded[i][0]) + len(encoded[i][1])))
    for request in order:
        context, continuation = encoded[request]
        whole = context + continuation
        if len(whole) > max_length + 1:
            # left-truncated inputs cannot be shared; the last max_length tokens predict the continuation
            inp = whole[-(max_length + 1):][:-1]
            seq = _Sequence(inp, [(request, len(inp) - len(continuation), continuation)])
            sequences.append(seq)
            continue
        candidates = by_context.setdefault(tuple(context), [])
        host = next((seq for full, seq in candidates
                     if len(full) >= len(whole) and full[:len(whole)] == whole), None)
        if host is None:
            host = _Sequence(whole[:-1])
            candidates.append((whole, host))
            sequences.append(host)
        host.uses.append((request, len(context) - 1, continuation))
    return sequences


def loglikelihoods(model: ScoringModel, pairs: Sequence[tuple[str, str]], batch_size: int = 16
                   ) -> list[tuple[float, bool]]:
    """`(sum log p(continuation | context), continuation is the greedy decode)` for each pair."""
    encoded = [encode_pair(model, context, continuation) for context, continuation in pairs]
    for request, (_, continuation) in enumerate(encoded):
        if not continuation:
            raise ValueError(f"request {request}: the continuation {pairs[request][1]!r} encodes to no tokens")
        if len(continuation) > model.max_length:
            raise ValueError(f"request {request}: continuation of {len(continuation)} tokens exceeds the "
                             f"model window of {model.max_length}")
    sums = torch.zeros(len(pairs), dtype=torch.float64)
    misses = torch.zeros(len(pairs), dtype=torch.long)
    pending = list(range(len(pairs)))
    if model.shared_context_fn is not None:
        # inputs that fit the window share their context's forward pass; the rest take the plain path
        fits = [r for r in pending if len(encoded[r][0]) + len(encoded[r][1]) <= model.max_length + 1]
        _score_shared_contexts(model, encoded, fits, batch_size, sums, misses)
        pending = sorted(set(pending) - set(fits))
    if pending:
        _score_sequences(model, encoded, pending, batch_size, sums, misses)
    return [(float(s), int(m) == 0) for s, m in zip(sums.tolist(), misses.tolist(), strict=True)]


def _score_shared_contexts(model: ScoringModel, encoded: list[tuple[list[int], list[int]]], requests: list[int],
                           batch_size: int, sums: torch.Tensor, misses: torch.Tensor) -> None:
    by_context: dict[tuple[int, ...], list[int]] = {}
    for request in requests:
        by_context.setdefault(tuple(encoded[request][0]), []).append(request)
    groups = sorted(by_context.items(), key=lambda kv: -len(kv[0]))
    log.info("scoring %d requests over %d shared contexts (batch %d contexts)", len(requests), len(groups),
             batch_size)
    started = time.monotonic()
    for batch_no, start in enumerate(range(0, len(groups), batch_size)):
        batch = groups[start:start + batch_size]
        owners = [request for _, members in batch for request in members]
        context_of = [g for g, (_, members) in enumerate(batch) for _ in members]
        logprob, greedy = model.shared_context_fn([list(context) for context, _ in batch], context_of,
                                                  [encoded[r][1] for r in owners])
        index = torch.tensor(owners)
        sums[index] = logprob.double()
        misses[index] = (~greedy).long()
        if batch_no % 50 == 49:
            log.info("scored %d/%d contexts (%.1fs)", start + len(batch), len(groups), time.monotonic() - started)


def _score_sequences(model: ScoringModel, encoded: list[tuple[list[int], list[int]]], requests: list[int],
                     batch_size: int, sums: torch.Tensor, misses: torch.Tensor) -> None:
    sequences = _plan_sequences([encoded[r] for r in requests], model.max_length)
    sequences.sort(key=lambda seq: -len(seq.tokens))
    log.info("scoring %d requests with %d model inputs (batch %d)", len(requests), len(sequences), batch_size)
    started = time.monotonic()
    for batch_no, start in enumerate(range(0, len(sequences), batch_size)):
        batch = sequences[start:start + batch_size]
        width = len(batch[0].tokens)
        idx = torch.full((len(batch), width), model.pad_token_id, dtype=torch.long)
        rows, positions, targets, owners = [], [], [], []
        for row, seq in enumerate(batch):
            idx[row, :len(seq.tokens)] = torch.tensor(seq.tokens, dtype=torch.long)
            for local, first, continuation in seq.uses:
                n = len(continuation)
                rows.extend([row] * n)
                positions.extend(range(first, first + n))
                targets.extend(continuation)
                owners.extend([requests[local]] * n)
        logprob, greedy = model.token_logprobs(idx, torch.tensor(rows), torch.tensor(positions),
                                               torch.tensor(targets))
        owner_index = torch.tensor(owners)
        sums.index_add_(0, owner_index, logprob.double())
        misses.index_add_(0, owner_index, (~greedy).long())
        if batch_no % 50 == 49:
            log.info("scored %d/%d inputs (%.1fs)", start + len(batch), len(sequences), time.monotonic() - started)


@dataclass
class MultipleChoiceResult:
    """Per-task `{acc, acc_norm, n}` and one row per item (task, index, gold, predictions, log-likelihoods)."""

    scores: dict[str, dict[str, float]]
    items: pl.DataFrame


def item_rows(task: str, items: Sequence[Item], lls: Sequence[Sequence[float]],
              contexts: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Per-item predictions from per-choice log-likelihoods (lm-eval's acc / acc_norm rules: acc_norm divides
    by the length in characters of what is scored, the letter for MMLU, the choice text otherwise)."""
    rows = []
    for index, (item, item_lls) in enumerate(zip(items, lls, strict=True)):
        values = np.asarray(item_lls, dtype=np.float64)
        lengths = np.asarray([float(len(text)) for text in continuations(item)])
        pred = int(np.argmax(values))
        with np.errstate(divide="ignore"):
            pred_norm = int(np.argmax(values / lengths))
        rows.append({
            "task": task, "item": index, "doc_id": int(item.get("doc_id", index)), "query": item["query"],
            "context": contexts[index] if contexts is not None else None, "gold": item["gold"],
            "pred": pred, "pred_norm": pred_norm,
            "acc": float(pred == item["gold"]), "acc_norm": float(pred_norm == item["gold"]),
            "loglikelihoods": values.tolist(),
            "split": item.get("split"), "contaminated": item.get("contaminated"), "fact": item.get("fact"),
        })
    return rows


def summarise(rows: pl.DataFrame) -> dict[str, dict[str, float]]:
    """`{task: {"acc", "acc_norm", "n"}}` from item rows."""
    if rows.is_empty():
        return {}
    summary = rows.group_by("task", maintain_order=True).agg(
        pl.col("acc").mean(), pl.col("acc_norm").mean(), pl.len().alias("n"))
    return {row["task"]: {"acc": row["acc"], "acc_norm": row["acc_norm"], "n": int(row["n"])}
            for row in summary.iter_rows(named=True)}


def evaluate_multiple_choice(model: ScoringModel, tasks: dict[str, list[Item]], fmt: PromptFormat | None = None,
                             batch_size: int = 16, max_items: int | None = None,
                             fewshot: dict[str, dict] | None = None) -> MultipleChoiceResult:
    """Score every task; all tasks' requests go through one batched pass.

    `fewshot` maps a task to its shot pool (`tasks.load_fewshot`); a task without one draws its shots from
    its own items. `max_items` scores the first items only, with the shots lm-eval's `--limit` would give.
    """
    fmt = fmt or PromptFormat()
    fewshot = fewshot or {}
    pairs: list[tuple[str, str]] = []
    layout: list[tuple[str, list[Item], list[str], list[int]]] = []  # task, items, contexts, request offsets
    for task, all_items in tasks.items():
        items = all_items[:max_items] if max_items else all_items
        contexts = render_contexts(all_items, fmt, pool=fewshot.get(task), limit=len(items))
        offsets = []
        for item, context in zip(items, contexts, strict=True):
            offsets.append(len(pairs))
            pairs.extend((context, fmt.target_delimiter + text) for text in continuations(item))
        layout.append((task, items, contexts, offsets))
        warn_special_token_text(task, [[context, *continuations(item)] for item, context in zip(items, contexts,
                                                                                            strict=True)])
    results = loglikelihoods(model, pairs, batch_size=batch_size)
    rows: list[dict[str, Any]] = []
    for task, items, contexts, offsets in layout:
        lls = [[results[offset + c][0] for c in range(len(item["choices"]))]
               for item, offset in zip(items, offsets, strict=True)]
        rows.extend(item_rows(task, items, lls, contexts))
    frame = pl.DataFrame(rows, schema_overrides={"loglikelihoods": pl.List(pl.Float64), "split": pl.Utf8,
                                                 "contaminated": pl.Boolean, "context": pl.Utf8,
                                                 "fact": pl.Utf8}
                         ) if rows else pl.DataFrame()
    scores = summarise(frame)
    for task, score in scores.items():
        log.info("%s: acc %.4f acc_norm %.4f (n=%d, %s)", task, score["acc"], score["acc_norm"], score["n"],
                 fmt.name)
    return MultipleChoiceResult(scores=scores, items=frame)


def write_log_samples(items: pl.DataFrame, path: str | Path) -> Path:
    """One JSON line per scored item, like lm-eval's `--log_samples`: task, doc_id (index in its file), the
    exact context scored (shots included), one log-likelihood per choice, pred (argmax), pred_norm, gold."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for row in items.iter_rows(named=True):
            handle.write(json.dumps({"task": row["task"], "doc_id": row["doc_id"], "context": row["context"],
                                     "loglikelihoods": row["loglikelihoods"], "pred": row["pred"],
                                     "pred_norm": row["pred_norm"], "gold": row["gold"]}) + "\n")
    os.replace(tmp, path)
    return path


# ------------------------------------------------------------------- knowledge answers: base prompt or chat reply

def answer_context(item: Item, mode: str, answer_start: Callable[[Item], str] | None = None) -> tuple[str, str]:
    """(context, delimiter before the choice): `Question: …\\nAnswer:` for a base model (mode "base"), or the
    chat prompt (mode "chat"), followed there by `answer_start(item)`, the words a reply puts before the answer."""
    if mode == "base":
        return QUESTION_TEMPLATE.format(query=item["query"]), " "
    if mode != "chat":
        raise ValueError(f"answer_accuracy: mode {mode!r}; use 'chat' or 'base'")
    context = render_chat([{"role": "user", "content": item["query"]}], add_generation_prompt=True)
    prefix = answer_start(item) if answer_start is not None else ""
    return (context + prefix, " ") if prefix else (context, "")


def answer_accuracy(checkpoint: str | os.PathLike | ScoringModel, benchmark: Sequence[Item] | str | os.PathLike,
                    mode: str = "chat", batch_size: int = 64, device: str | None = None,
                    answer_start: Callable[[Item], str] | None = None) -> dict:
    """Knowledge accuracy of a base model or an assistant: the choice with the highest log-likelihood after
    `answer_context`, scored like every benchmark here. Returns `accuracy` and `accuracy_norm` (per character)
    per split (`sft`, `heldout`, ...; "all" for items without one), item counts, `overall` and `chance`."""
    items = load_items(benchmark) if isinstance(benchmark, str | os.PathLike) else list(benchmark)
    for position, item in enumerate(items):
        if not isinstance(item.get("query"), str) or not isinstance(item.get("choices"), list) or not item["choices"]:
            raise ValueError(f"benchmark item {position}: needs a 'query' string and a non-empty 'choices' list")
        if not isinstance(item.get("gold"), int) or not 0 <= item["gold"] < len(item["choices"]):
            raise ValueError(f"benchmark item {position}: 'gold' must index into 'choices' "
                             f"({len(item['choices'])} choices)")
    model = checkpoint if isinstance(checkpoint, ScoringModel) else load_scoring_model(
        checkpoint, device or ("cuda" if torch.cuda.is_available() else "cpu"))
    pairs, offsets = [], []
    for item in items:
        context, delimiter = answer_context(item, mode, answer_start)
        offsets.append(len(pairs))
        pairs.extend((context, delimiter + str(choice)) for choice in item["choices"])
    log.info("scoring %d choices of %d items with %s in %s mode", len(pairs), len(items), model.name, mode)
    lls = [ll for ll, _ in loglikelihoods(model, pairs, batch_size)]
    scored = item_rows("answers", [{**item, "split": str(item.get("split", "all"))} for item in items],
                       [lls[o:o + len(item["choices"])] for item, o in zip(items, offsets, strict=True)])
    rows = pl.DataFrame([{k: row[k] for k in ("split", "acc", "acc_norm")} for row in scored],
                        schema={"split": pl.Utf8, "acc": pl.Float64, "acc_norm": pl.Float64})
    per_split = rows.group_by("split").agg(pl.col("acc").mean(), pl.col("acc_norm").mean(), pl.len()).sort("split")
    return {
        "mode": mode, "checkpoint": model.name if isinstance(checkpoint, ScoringModel) else str(checkpoint),
        "accuracy": dict(zip(per_split["split"], per_split["acc"], strict=True)),
        "accuracy_norm": dict(zip(per_split["split"], per_split["acc_norm"], strict=True)),
        "items": dict(zip(per_split["split"], per_split["len"], strict=True)),
        "overall": float(rows["acc"].mean()) if rows.height else None,
        "chance": float(np.mean([1 / len(item["choices"]) for item in items])) if items else None,
        # per split, each item's 0/1 in file order, so two models on one file can be compared item by item
        "correct": {split: rows.filter(pl.col("split") == split)["acc"].to_list() for split in per_split["split"]},
    }
