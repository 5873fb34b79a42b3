"""Multiple-choice scoring with lm-eval-harness semantics, batched, sharing forward passes across choices.

For every choice the score is the summed log-probability of the continuation (target delimiter + choice)
given the context. `acc` takes the argmax of the sums; `acc_norm` the argmax after dividing each sum by the
choice's length in characters (the choice text without the delimiter, as lm-eval does).

Tokenization follows lm-eval's causal-model rule: trailing whitespace of the context moves to the
continuation, the whole string is encoded, and the continuation is what follows the context's own
encoding. Sequences longer than the model's window are cut from the left like lm-eval does.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import torch

from llm_assets.evaluation.adapter import ScoringModel
from llm_assets.evaluation.tasks import Item

log = logging.getLogger(__name__)

DEFAULT_TEMPLATE = "Question: {query}\nAnswer:"


@dataclass(frozen=True)
class PromptFormat:
    """How an item becomes a context string; `shots` solved examples from the same task precede it."""

    template: str = DEFAULT_TEMPLATE
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    shots: int = 0
    seed: int = 1234
    name: str = "default"

    def question(self, item: Item) -> str:
        try:
            return self.template.format(query=item["query"])
        except (KeyError, IndexError) as err:
            raise ValueError(f"prompt template {self.template!r}: only {{query}} may be filled ({err})") from None


def sample_shots(items: Sequence[Item], index: int, shots: int, seed: int) -> list[Item]:
    """`shots` items other than `items[index]`, the same every run for a given seed and index."""
    if shots <= 0:
        return []
    others = [i for i in range(len(items)) if i != index]
    if len(others) < shots:
        raise ValueError(f"{shots}-shot prompts need at least {shots + 1} items in the task, got {len(items)}")
    rng = random.Random(seed * 1_000_003 + index)
    return [items[i] for i in rng.sample(others, shots)]


def render_context(items: Sequence[Item], index: int, fmt: PromptFormat) -> str:
    """The full context for `items[index]`: solved shots, then the item's question."""
    parts = [fmt.question(shot) + fmt.target_delimiter + shot["choices"][shot["gold"]]
             for shot in sample_shots(items, index, fmt.shots, fmt.seed)]
    parts.append(fmt.question(items[index]))
    return fmt.fewshot_delimiter.join(parts)


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


def item_rows(task: str, items: Sequence[Item], lls: Sequence[Sequence[float]]) -> list[dict[str, Any]]:
    """Per-item predictions from per-choice log-likelihoods (lm-eval's acc / acc_norm rules)."""
    rows = []
    for index, (item, item_lls) in enumerate(zip(items, lls, strict=True)):
        values = np.asarray(item_lls, dtype=np.float64)
        lengths = np.asarray([float(len(choice)) for choice in item["choices"]])
        pred = int(np.argmax(values))
        with np.errstate(divide="ignore"):
            pred_norm = int(np.argmax(values / lengths))
        rows.append({
            "task": task, "item": index, "query": item["query"], "gold": item["gold"],
            "pred": pred, "pred_norm": pred_norm,
            "acc": float(pred == item["gold"]), "acc_norm": float(pred_norm == item["gold"]),
            "loglikelihoods": values.tolist(),
            "split": item.get("split"), "contaminated": item.get("contaminated"),
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
                             batch_size: int = 16, max_items: int | None = None) -> MultipleChoiceResult:
    """Score every task; all tasks' requests go through one batched pass."""
    fmt = fmt or PromptFormat()
    pairs: list[tuple[str, str]] = []
    layout: list[tuple[str, list[Item], list[int]]] = []  # task, items, request offsets per item
    for task, all_items in tasks.items():
        items = all_items[:max_items] if max_items else all_items
        offsets = []
        for index, item in enumerate(items):
            # shots are drawn from the whole task, not only the scored slice
            context = render_context(all_items, index, fmt)
            offsets.append(len(pairs))
            pairs.extend((context, fmt.target_delimiter + choice) for choice in item["choices"])
        layout.append((task, items, offsets))
    results = loglikelihoods(model, pairs, batch_size=batch_size)
    rows: list[dict[str, Any]] = []
    for task, items, offsets in layout:
        lls = [[results[offset + c][0] for c in range(len(item["choices"]))]
               for item, offset in zip(items, offsets, strict=True)]
        rows.extend(item_rows(task, items, lls))
    frame = pl.DataFrame(rows, schema_overrides={"loglikelihoods": pl.List(pl.Float64), "split": pl.Utf8,
                                                 "contaminated": pl.Boolean}) if rows else pl.DataFrame()
    scores = summarise(frame)
    for task, score in scores.items():
        log.info("%s: acc %.4f acc_norm %.4f (n=%d, %s)", task, score["acc"], score["acc_norm"], score["n"],
                 fmt.name)
    return MultipleChoiceResult(scores=scores, items=frame)
