"""Fine-tuning examples: conversations from JSONL files, rendered in the chat format with a loss mask.

Three row formats are read (one JSON object per line, the format decided per row):

- the synthetic crawl's `sft.jsonl`: `{"instruction", "response", "person", "fact"}`, question rows also
  `"answer"` (the short answer the plain form trains; an Alpaca row may carry one too), reading questions
  about fictional people also `"task": "reading"` (not read here);
- Alpaca: `{"instruction", "input" (optional), "output"}`;
- chat: `{"messages": [{"role": "user"|"assistant"|"system", "content": ...}, ...]}`.

`render_examples` writes one Parquet row per conversation: the rendered `text`, its `input_ids`, and a
`loss_mask` that is 1 exactly on the tokens of assistant contents and their closing `<|end|>` (`form` "chat").
With `plain=True` each single-turn conversation is also written in the plain question form that benchmarks
use, `Question: {user}\nAnswer: {answer}` (`form` "plain", loss on the answer): the row's short `answer`
where it has one (the synthetic questions do), else the assistant's reply. A model taught the facts of some
people in that form answers it about people it never saw asked (Allen-Zhu & Li, Physics of Language Models
3.1, "mixed training"); taught only the chat form, it does not carry over to the question form.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from llm_assets.benchmarks import QUESTION_TEMPLATE, keys_of, load_items, parse_json_line
from llm_assets.benchmarks import short as shortened
from llm_assets.lake import file_sha256, write_parquet
from llm_assets.text import normalized_text
from llm_assets.tokens.special import (
    ASSISTANT,
    END_OF_TURN,
    ROLES,
    USER,
    assistant_spans,
    render_chat,
    special_token_text,
)
from llm_assets.tokens.tokenizer import encode_with_offsets, load_tokenizer, special_id

logger = logging.getLogger(__name__)

EXAMPLE_SCHEMA = {"text": pl.Utf8, "input_ids": pl.List(pl.Int32), "loss_mask": pl.List(pl.Int8),
                  "source": pl.Utf8, "person": pl.Utf8, "fact": pl.Utf8, "form": pl.Utf8}
FORMS = ("chat", "plain")
TOKENIZER_SHA_KEY = b"llm_assets.tokenizer_sha256"
CONTEXT_KEY = b"llm_assets.context"
ASSISTANT_ID_KEY = b"llm_assets.assistant_id"  # counts assistant turns by id: content may spell the marker


def _conversation_from_row(row: object, where: str) -> dict:
    """One JSONL row as `{"messages", "person", "fact"}`; a ValueError naming `where` when it fits no format."""
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(row).__name__}")
    for key in ("person", "fact"):  # stored as text columns beside each example
        if row.get(key) is not None and not isinstance(row[key], str):
            raise ValueError(f"{where}: {key!r} must be a string when given, got {shortened(row[key])}")
    if "messages" in row:
        messages = row["messages"]
        if not isinstance(messages, list) or not messages:
            raise ValueError(f"{where}: 'messages' must be a non-empty list of {{role, content}} objects")
        clean = []
        for position, message in enumerate(messages):
            if not isinstance(message, dict):
                raise ValueError(f"{where}: message {position} is not an object")
            role, content = message.get("role"), message.get("content")
            if not isinstance(role, str) or role not in ROLES:  # a list or dict role is unhashable
                raise ValueError(f"{where}: message {position} has role {shortened(role)}; use one of "
                                 f"{', '.join(ROLES)}")
            if not isinstance(content, str):
                raise ValueError(f"{where}: message {position} ({role}) content must be a string")
            if not content.strip():
                raise ValueError(f"{where}: message {position} ({role}) is empty; remove the message or the row")
            clean.append({"role": role, "content": content})
        if not any(m["role"] == "assistant" for m in clean):
            raise ValueError(f"{where}: conversation has no assistant message, so nothing to learn from")
        return {"messages": clean, "person": row.get("person"), "fact": row.get("fact")}
    instruction = row.get("instruction")
    answer_key = "response" if "response" in row else "output" if "output" in row else None
    if answer_key is None or instruction is None:
        raise ValueError(f"{where}: unknown row format (keys {keys_of(row)}); expected 'messages', "
                         f"'instruction'+'response' (synthetic) or 'instruction'+'output' (Alpaca)")
    answer, extra_input = row[answer_key], row.get("input") or ""
    for key, value in (("instruction", instruction), (answer_key, answer), ("input", extra_input)):
        if not isinstance(value, str):
            raise ValueError(f"{where}: {key!r} must be a string, got {type(value).__name__}")
        if key != "input" and not value.strip():
            raise ValueError(f"{where}: {key!r} is empty; remove the row or fill it in")
    prompt = f"{instruction}\n\n{extra_input}" if extra_input.strip() else instruction
    short = row.get("answer")
    if short is not None and not (isinstance(short, str) and short.strip()):
        raise ValueError(f"{where}: 'answer' (the short answer) must be a non-empty string")
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}],
            "person": row.get("person"), "fact": row.get("fact"), "answer": short}


def plain_form(conversation: dict) -> tuple[str, str] | None:
    """(question text through `Answer:`, ` answer`) of a single-turn conversation, else None."""
    messages = conversation["messages"]
    if [m["role"] for m in messages] != ["user", "assistant"]:
        return None
    return QUESTION_TEMPLATE.format(query=messages[0]["content"]), " " + (conversation.get("answer")
                                                                          or messages[1]["content"])


def _utf8_line(raw: bytes, number: int, where: str) -> str:
    """One line of a JSONL file as text (a UTF-8 byte-order mark on the first line is allowed)."""
    try:
        return raw.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError as err:
        kind = "a binary file, not JSON Lines" if b"\0" in raw else "not UTF-8 text"
        raise ValueError(f"{where}: {kind} (byte 0x{raw[err.start]:02x} at column {err.start + 1}); "
                         "SFT files are JSON Lines in UTF-8") from None


def load_conversations(files: Sequence[str | os.PathLike]) -> list[dict]:
    """All conversations of the given JSONL files, as `{"messages", "source", "person", "fact"}`.

    Blank lines are skipped; a malformed line (not UTF-8, not JSON, no known format, an empty message)
    raises a ValueError naming the file and line number.
    """
    conversations = []
    for file in files:
        path = Path(file)
        if not path.is_file():
            raise FileNotFoundError(f"SFT data file {path} not found")
        count = 0
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                where = f"{path}:{number}"
                line = _utf8_line(raw, number, where)
                if not line.strip():
                    continue
                try:
                    row = parse_json_line(line)
                except ValueError as err:
                    raise ValueError(f"{where}: {err}") from None
                conversation = _conversation_from_row(row, where)
                conversation["source"] = str(path)
                conversations.append(conversation)
                count += 1
        logger.info("read %d conversations from %s", count, path)
    return conversations


def assistant_token_mask(offsets: np.ndarray, spans: Iterable[tuple[int, int]]) -> np.ndarray:
    """int8 mask over tokens: 1 where a token's characters overlap an assistant span; offsets (N, 2)."""
    mask = np.zeros(len(offsets), dtype=np.int8)
    starts, ends = offsets[:, 0], offsets[:, 1]
    for span_start, span_end in spans:
        mask[(starts < span_end) & (ends > span_start)] = 1
    return mask


def _rendered_forms(conversations: Sequence[dict], plain: bool, dropped: Counter[str]
                    ) -> tuple[list[dict], list[str], list[list[tuple[int, int]]], list[str]]:
    """(conversation, text, loss spans, form) per example to encode: the chat form of each conversation with an
    answer, then with `plain` its question form; conversations with an empty reply counted in `dropped`."""
    kept, texts, spans, forms = [], [], [], []
    for conversation in conversations:
        if any(m["role"] == "assistant" and not m["content"].strip() for m in conversation["messages"]):
            dropped["empty_response"] += 1
            continue
        kept.append(conversation)
        texts.append(render_chat(conversation["messages"]))
        spans.append(assistant_spans(conversation["messages"], include_end=True))
        forms.append("chat")
        if plain and (question := plain_form(conversation)) is not None:
            kept.append(conversation)
            texts.append(question[0] + question[1])
            spans.append([(len(question[0]), len(question[0]) + len(question[1]))])
            forms.append("plain")
    return kept, texts, spans, forms


def render_examples(conversations: Sequence[dict], tokenizer_path: str | os.PathLike, context: int,
                    out_path: str | os.PathLike, plain: bool = False) -> dict:
    """Render, tokenize and mask every conversation (and with `plain`, each single-turn one again in the
    question form); write Parquet to `out_path`; return the stats.

    Columns: `text`, `input_ids` list[int32], `loss_mask` list[int8], `source`, `person`, `fact`, `form`.
    Dropped (counted per reason): `too_long` (more than `context` tokens), `empty_response`
    (an assistant message with no text). The tokenizer's sha256 is stored in the file's metadata.
    """
    tokenizer_path = Path(tokenizer_path)
    if not tokenizer_path.is_file():
        raise FileNotFoundError(f"tokenizer {tokenizer_path} not found (the tokenizer asset's tokenizer.json)")
    tokenizer = load_tokenizer(tokenizer_path)
    for token in (USER, ASSISTANT, END_OF_TURN):
        if special_id(tokenizer, token) is None:
            raise ValueError(f"tokenizer {tokenizer_path} lacks the chat token {token}; retrain it with "
                             f"llm_assets.tokens.special.SPECIAL_TOKENS")
    dropped: Counter[str] = Counter()
    kept, texts, spans, forms = _rendered_forms(conversations, plain, dropped)
    special_text = sum(any(special_token_text(m["content"]) for m in c["messages"])
                       for c, form in zip(kept, forms, strict=True) if form == "chat")
    # the chat markers become special ids; every content, special-token text included, is encoded as text
    encodings = encode_with_offsets(tokenizer, texts)
    rows: dict[str, list] = {name: [] for name in EXAMPLE_SCHEMA}
    for number, (conversation, text, text_spans, form, (ids, offsets)) in enumerate(
            zip(kept, texts, spans, forms, encodings, strict=True)):
        if len(ids) > context:
            dropped["too_long"] += 1
            continue
        mask = assistant_token_mask(offsets, text_spans)
        rows["text"].append(str(text))
        rows["input_ids"].append(ids)
        rows["loss_mask"].append(mask.tolist())
        rows["source"].append(conversation.get("source"))
        rows["person"].append(conversation.get("person"))
        rows["fact"].append(conversation.get("fact"))
        rows["form"].append(form)
        if number and number % 20000 == 0:
            logger.info("rendered %d of %d conversations", number, len(kept))
    frame = pl.DataFrame(rows, schema=EXAMPLE_SCHEMA)
    write_parquet(frame, out_path, {TOKENIZER_SHA_KEY: file_sha256(tokenizer_path).encode(),
                                     CONTEXT_KEY: str(context).encode(),
                                     ASSISTANT_ID_KEY: str(special_id(tokenizer, ASSISTANT)).encode()})
    lengths = frame.select(pl.col("input_ids").list.len()).to_series()
    stats = {
        "examples": frame.height,
        "examples_per_form": {form: int((frame["form"] == form).sum()) for form in FORMS},
        "tokens": int(lengths.sum() or 0),
        "assistant_tokens": int(frame.select(pl.col("loss_mask").list.sum().sum()).item() or 0),
        "max_tokens": int(lengths.max() or 0),
        "mean_tokens": float(lengths.mean() or 0.0),
        "dropped": dict(dropped),
        "conversations": len(conversations),
        # conversations whose content spells a special token: kept, and encoded as plain text
        "special_token_text": special_text,
        "path": str(out_path),
    }
    logger.info("rendered %d SFT examples (%d tokens, %d on assistant turns); dropped %s",
                stats["examples"], stats["tokens"], stats["assistant_tokens"], stats["dropped"] or "none")
    return stats


def chat_texts(path: str | os.PathLike, count: int) -> list[str]:
    """The first `count` rendered conversations in the chat form (plain-form rows left out)."""
    frame = pl.scan_parquet(path)
    if "form" in frame.collect_schema().names():
        frame = frame.filter(pl.col("form") == "chat")
    return frame.select("text").head(count).collect()["text"].to_list()


def examples_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata `render_examples` stored: `tokenizer_sha256` and `context` (empty for foreign files)."""
    raw = pq.read_schema(path).metadata or {}
    out = {}
    if TOKENIZER_SHA_KEY in raw:
        out["tokenizer_sha256"] = raw[TOKENIZER_SHA_KEY].decode()
    if CONTEXT_KEY in raw:
        out["context"] = raw[CONTEXT_KEY].decode()
    return out


def check_examples(path: str | os.PathLike, context: int,
                   benchmark_files: str | os.PathLike | Sequence[str | os.PathLike] | None) -> dict:
    """Data checks on an examples file: `{name: (passed, details)}`.

    - `within_context`: no example longer than `context` tokens;
    - `assistant_spans_non_empty`: every assistant turn has content tokens besides its `<|end|>`;
    - `no_heldout_overlap`: no held-out benchmark query (normalized text) appears in any user turn or plain
      question, and no held-out person (items with a `person`) is named in any example; an item is held out
      when its `split` is `heldout` or it has no `split` (a user's evaluation file).
    """
    present = pq.read_schema(path).names
    frame = pl.read_parquet(path, columns=[c for c in ("text", "input_ids", "loss_mask", "form") if c in present])
    if "form" not in frame.columns:  # rendered before the plain form existed
        frame = frame.with_columns(pl.lit("chat").alias("form"))
    lengths = frame.select(pl.col("input_ids").list.len()).to_series()
    too_long = int((lengths > context).sum())
    if benchmark_files is None or isinstance(benchmark_files, str | os.PathLike):
        benchmark_files = [] if benchmark_files is None else [benchmark_files]
    return {
        "within_context": (too_long == 0, {"max_tokens": int(lengths.max() or 0), "context": context,
                                           "longer_than_context": too_long}),
        "assistant_spans_non_empty": _check_assistant_spans(frame, _assistant_id(path)),
        "no_heldout_overlap": _check_heldout_overlap(frame, benchmark_files),
    }


def _assistant_id(path: str | os.PathLike) -> int | None:
    """The `<|assistant|>` id `render_examples` stored (None for files written before it did)."""
    raw = (pq.read_schema(path).metadata or {}).get(ASSISTANT_ID_KEY, b"")
    return int(raw) if raw.strip().isdigit() else None


def _assistant_turns(frame: pl.DataFrame, assistant_id: int | None) -> np.ndarray:
    """Assistant turns per chat row: `<|assistant|>` ids, or (older files) the marker's text in `text`."""
    if assistant_id is None:
        return frame["text"].str.count_matches(ASSISTANT, literal=True).to_numpy()
    return frame.select(pl.col("input_ids").list.eval((pl.element() == assistant_id).sum())
                        .list.first()).to_series().fill_null(0).to_numpy()


def _check_assistant_spans(frame: pl.DataFrame, assistant_id: int | None = None) -> tuple[bool, dict]:
    """Every assistant turn is one run of 1s in the loss mask, holding content plus the closing `<|end|>`; a
    plain-form row has one run (its answer)."""
    masks = frame["loss_mask"]
    flat = masks.explode().fill_null(0).to_numpy().astype(np.int8)
    row_lengths = masks.list.len().to_numpy().astype(np.int64)
    row_ends = np.cumsum(row_lengths)
    row_starts, non_empty = row_ends - row_lengths, row_lengths > 0
    row_of = np.repeat(np.arange(frame.height), row_lengths)
    row_start = np.zeros(len(flat), dtype=bool)
    row_start[row_starts[non_empty]] = True
    row_end = np.zeros(len(flat), dtype=bool)
    row_end[row_ends[non_empty] - 1] = True
    previous = np.concatenate(([0], flat[:-1])).astype(np.int8)
    next_ = np.concatenate((flat[1:], [0])).astype(np.int8)
    run_starts = np.flatnonzero((flat == 1) & (row_start | (previous == 0)))
    run_ends = np.flatnonzero((flat == 1) & (row_end | (next_ == 0)))
    run_lengths = run_ends - run_starts + 1
    runs_per_row = np.bincount(row_of[run_starts], minlength=frame.height)
    plain = (frame["form"] == "plain").to_numpy()
    turns_per_row = np.where(plain, 1, _assistant_turns(frame, assistant_id))
    # a chat turn is content plus <|end|>: at least 2 tokens; a plain answer may be one token
    short_runs = int((run_lengths < np.where(plain[row_of[run_starts]], 1, 2)).sum())
    mismatched = np.flatnonzero(runs_per_row != turns_per_row)
    return (short_runs == 0 and len(mismatched) == 0,
            {"assistant_spans": len(run_lengths), "spans_without_content": short_runs,
             "examples_with_unmasked_turns": len(mismatched),
             "sample": [frame["text"][int(i)][:200] for i in mismatched[:3]]})


def _whole_words(text: pl.Expr) -> pl.Expr:
    """Normalized text padded with a space on each side, so a substring match is a whole-word match."""
    return pl.concat_str([pl.lit(" "), normalized_text(text), pl.lit(" ")])


def _whole_word_patterns(strings: Iterable[str]) -> list[str]:
    """`strings` as distinct `_whole_words` patterns (blank ones dropped)."""
    normalized = pl.DataFrame({"s": list(strings)}, schema={"s": pl.Utf8}).select(_whole_words(pl.col("s")))
    return [p for p in normalized.to_series().unique().to_list() if p.strip()]


def _patterns_found(texts: pl.DataFrame, column: str, patterns: list[str]) -> list[str]:
    """The `patterns` that occur in `texts[column]`, stripped and sorted."""
    found = texts.select(pl.col(column).str.extract_many(patterns).alias("m")).explode("m").drop_nulls()
    return sorted(m.strip() for m in found.unique().to_series().to_list())


def _check_heldout_overlap(frame: pl.DataFrame, benchmark_files: Sequence[str | os.PathLike]) -> tuple[bool, dict]:
    """No user turn or plain question contains a held-out benchmark query whole (normalized words, in order),
    and no example names a held-out person."""
    if not benchmark_files:
        return True, {"skipped": "no benchmark file configured (LLM_ASSETS_BENCHMARKS)"}
    heldout = [item for file in benchmark_files for item in heldout_items(file)]
    patterns = _whole_word_patterns(item["query"] for item in heldout)
    chat_turns = (frame.filter(pl.col("form") != "plain")
                  .select(pl.col("text").str.extract_all(r"(?s)<\|user\|>\n.*?<\|end\|>").alias("turn"))
                  .explode("turn").drop_nulls()
                  .select(pl.col("turn").str.strip_prefix(USER).str.strip_suffix(END_OF_TURN)))
    plain_questions = (frame.filter(pl.col("form") == "plain")
                       .select(pl.col("text").str.extract(r"(?s)^Question: (.*)\nAnswer:", 1).alias("turn")))
    user_turns = (pl.concat([chat_turns, plain_questions]).drop_nulls()
                  .select(_whole_words(pl.col("turn")).alias("turn")))
    hits = user_turns.filter(pl.col("turn").str.contains_any(patterns)) if patterns else user_turns.head(0)
    matched = _patterns_found(hits, "turn", patterns) if hits.height else []
    # the synthetic world's held-out people (items with a `person`) must not be named anywhere, answers included
    people = _whole_word_patterns(item["person"] for item in heldout if isinstance(item.get("person"), str))
    named = (_patterns_found(frame.select(_whole_words(pl.col("text")).alias("text")), "text", people)
             if people and frame.height else [])
    return hits.height == 0 and not named, {
        "benchmark_files": [str(f) for f in benchmark_files], "heldout_queries": len(heldout),
        "user_turns": user_turns.height, "overlapping_turns": hits.height, "sample_queries": matched[:5],
        "heldout_people": len(people), "heldout_people_named": len(named), "sample_people": named[:5]}


def heldout_items(benchmark_file: str | os.PathLike) -> list[dict]:
    """Every held-out benchmark item: split `heldout`, or no split at all (the items of a user's evaluation
    file are all held out; the synthetic world's `sft` items are meant to be trained on)."""
    return [item for item in load_items(benchmark_file) if item.get("split", "heldout") == "heldout"]
