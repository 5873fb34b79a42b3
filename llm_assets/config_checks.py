"""Typed, range-checked values for configuration sections: the profiles' and the training programs' JSON.

A section is a frozen dataclass; its annotations give the types (a JSON list becomes a tuple, an int a float)
and `RULES` the ranges and choices on top of them, per section class (a subclass also obeys its bases'
rules). Every problem names the section and field, and callers add the file, so a bad value in a config
file is found without reading code.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable

# Ranges and choices per section class, on top of the types; an int field not listed must be > 0, a float field
# not listed >= 0 (both finite). A section's own `problems()` method, when it has one, checks between fields.

Rule = tuple[Callable[[object], bool], str]
_POSITIVE: Rule = (lambda v: v > 0, "> 0")
_NON_NEGATIVE: Rule = (lambda v: v >= 0, ">= 0")
_SHARE: Rule = (lambda v: 0 <= v <= 1, "in [0, 1]")
_NGRAM: Rule = (lambda v: 1 <= v <= 64, "in 1..64")  # the n-gram hashes combine at most 64 words
_NGRAM_SHARES: Rule = (lambda v: all(1 <= n <= 64 and 0 <= share <= 1 for n, share in v),
                       "a list of [n in 1..64, share in [0, 1]] pairs")


def _one_of(*choices: str) -> Rule:
    return (lambda v: v in choices), "one of " + ", ".join(repr(c) for c in choices)


# Lightning's precision and accelerator names
PRECISIONS = ("auto", "32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true",
              "transformer-engine", "transformer-engine-float16")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")

RULES: dict[str, dict[str, Rule]] = {
    "SyntheticSize": {"sft_fraction": _SHARE},
    "CurationConfig": {
        "extractor": _one_of("resiliparse", "trafilatura"),
        "extraction_timeout_s": _POSITIVE,
        "min_language_score": _SHARE,
        "languages": (lambda v: len(v) > 0 and all(2 <= len(c) <= 3 and c.isalpha() for c in v),
                      "a non-empty list of ISO 639 codes such as [\"en\", \"de\"]"),
        "pii_action": _one_of("redact", "drop"),
        "pii_score_threshold": _SHARE,
        "toxicity_threshold": _SHARE,
        "toxic_line_share": _SHARE,
        "nsfw_word_share": _SHARE,
        "minhash_ngram": _NGRAM,
        "minhash_rows": _NGRAM,
        "quality_threshold": _SHARE,
        "quality_max_drop_share": _SHARE,
        "source_weights": (lambda v: all(w >= 0 for w in v.values()), "an object of site: weight >= 0"),
        "validation_fraction": (lambda v: 0 <= v < 1, "in [0, 1)"),
        "decontamination_ngram": _NGRAM,
        "boilerplate_min_share": _SHARE,
    },
    "Runtime": {
        "precision": _one_of(*PRECISIONS), "accelerator": _one_of(*ACCELERATORS),
        "devices": (lambda v: (v >= 1 or v == -1) if isinstance(v, int) else v.strip() != "",
                    "a count >= 1, -1 (all), or a string such as \"auto\" or \"0,1\""),
        "strategy": (lambda v: v.strip() != "", "a strategy name such as \"auto\" or \"ddp\""),
    },
    # a count of steps, batches or passes that may be 0 turns that thing off (no checkpoint, no validation, ...)
    "TrainSize": {"lr": _POSITIVE, "warmup_steps": _NON_NEGATIVE, "max_epochs": _POSITIVE, "min_lr_ratio": _SHARE,
                  "seed": _NON_NEGATIVE, "checkpoint_every": _NON_NEGATIVE, "eval_every": _NON_NEGATIVE,
                  "eval_batches": _NON_NEGATIVE},
    "SFTSize": {"lr": _POSITIVE, "warmup_steps": _NON_NEGATIVE, "min_lr_ratio": _SHARE, "seed": _NON_NEGATIVE,
                "checkpoint_every": _NON_NEGATIVE, "epochs_of_templates": _NON_NEGATIVE,
                "eval_examples": _NON_NEGATIVE, "replay_windows": _NON_NEGATIVE, "heldout_margin": _SHARE},
    "EvalSize": {"shots": _NON_NEGATIVE},
    # every ratio and share of the heuristic families is a share
    "HeuristicThresholds": {
        **{name: _SHARE for name in (
            "max_symbol_word_ratio", "max_bullet_lines_ratio", "max_ellipsis_lines_ratio", "min_alpha_words_ratio",
            "max_dup_line_ratio", "max_dup_paragraph_ratio", "max_dup_line_char_ratio",
            "max_dup_paragraph_char_ratio", "min_line_punct_ratio", "max_short_line_ratio",
            "max_dup_line_char_share", "max_newline_word_ratio")},
        # a minimum count of 0 turns that rule off
        **{name: _NON_NEGATIVE for name in ("min_words", "min_stop_words", "c4_min_words_per_line",
                                            "c4_min_sentences")},
        "max_top_ngram_char_ratio": _NGRAM_SHARES,
        "max_dup_ngram_char_ratio": _NGRAM_SHARES,
    },
}


def _cross_field_problems(section) -> list[str]:
    """Problems that involve two fields of one section: its `problems()`, if it has that method."""
    problems = getattr(section, "problems", None)
    return problems() if problems is not None else []


def _type_name(hint) -> str:
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if not (len(args) == 2 and args[1] is Ellipsis):
            return "[" + ", ".join(_type_name(a) for a in args) + "]"
        item = _type_name(args[0])
        return f"a list of {item} lists" if item.startswith("[") else \
            f"a list of {item.removeprefix('a ').removeprefix('an ')}s"
    if typing.get_origin(hint) is dict:
        key, value = typing.get_args(hint)
        noun = _type_name(value).removeprefix("a ").removeprefix("an ")
        return "an object of string keys" + ("" if value is object else f" and {noun} values")
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            type(None): "null"}.get(hint, str(hint))


_WRONG = object()


def _typed(value, hint):
    """`value` as the annotation `hint` wants it (a JSON list becomes a tuple, an int a float), else _WRONG."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        for arg in args:
            if (typed := _typed(value, arg)) is not _WRONG:
                return typed
        return _WRONG
    if hint is object:
        return value
    if hint is type(None):
        return None if value is None else _WRONG
    if hint is bool:
        return value if isinstance(value, bool) else _WRONG
    if hint is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _WRONG
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        return float(value) if ok else _WRONG
    if hint is str:
        return value if isinstance(value, str) else _WRONG
    if origin is tuple and isinstance(value, list | tuple):
        # tuple[X, ...] is a list of X; tuple[X, Y] a pair of exactly those types
        hints = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
        if len(hints) != len(value):
            return _WRONG
        items = [_typed(v, h) for v, h in zip(value, hints, strict=True)]
        return _WRONG if any(i is _WRONG for i in items) else tuple(items)
    if origin is dict and isinstance(value, dict):
        items = {_typed(k, args[0]): _typed(v, args[1]) for k, v in value.items()}
        return _WRONG if _WRONG in items or any(v is _WRONG for v in items.values()) else items
    return _WRONG


def checked_value(cls, name: str, value) -> tuple[object, str | None]:
    """`(value as the field's type, None)`, or `(None, what is wrong)` for field `name` of section `cls`."""
    hint = typing.get_type_hints(cls)[name]
    typed = _typed(value, hint)
    if typed is _WRONG:
        return None, f"must be {_type_name(hint)}"
    rule = next((RULES[k.__name__][name] for k in cls.__mro__ if name in RULES.get(k.__name__, {})), None)
    if rule is None and typed is not None and not isinstance(typed, bool):
        rule = _POSITIVE if isinstance(typed, int) else _NON_NEGATIVE if isinstance(typed, float) else None
    if rule is not None and typed is not None and not rule[0](typed):
        return None, f"must be {rule[1]}"
    return typed, None


def section_problems(section) -> list[str]:
    """Every problem of one section's values (type, range, choice, and between fields), as `field = value ...`."""
    problems = []
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        _, problem = checked_value(type(section), f.name, value)
        if problem:
            problems.append(f"{f.name} = {json.dumps(value, default=repr)} {problem}")
    return problems + ([] if problems else _cross_field_problems(section))


def override_problems(cls, values, name: str) -> list[str]:
    """Problems of `values`, a field holding overrides of section `cls`'s fields by name (e.g. a curation
    setting that replaces heuristic thresholds): each name must be a field of `cls`, each value allowed there."""
    if not isinstance(values, dict):
        return [f"{name} must be an object of field: value"]
    known = [f.name for f in dataclasses.fields(cls)]
    problems = []
    for key, value in values.items():
        if key not in known:
            problems.append(f"{name}.{key} is not a field of {cls.__name__}; fields are {', '.join(known)}")
        elif (problem := checked_value(cls, key, value)[1]) is not None:
            problems.append(f"{name}.{key} = {json.dumps(value, default=repr)} {problem}")
    return problems


def replace_fields(current, section: str, values: dict, where: str):
    """`current` (one section's dataclass) with `values` replaced by field name, each checked; `current` may
    be the section's class, when every field without a default must then be in `values`."""
    if not isinstance(values, dict):
        raise ValueError(f"{where}: section {section!r} must be an object of field: value")
    cls = current if isinstance(current, type) else type(current)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown} in section {section!r}; "
                         f"fields are {', '.join(known)}")
    typed, problems = {}, []
    for name, value in values.items():
        typed[name], problem = checked_value(cls, name, value)
        if problem:
            problems.append(f"{section}.{name} = {json.dumps(value)} {problem}")
    if problems:
        raise ValueError(f"{where}: {'; '.join(problems)}")
    if current is cls:
        missing = [name for name, f in known.items() if name not in typed
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ValueError(f"{where}: section {section!r} needs field(s) {missing} (or give a \"profile\")")
        replaced = cls(**typed)
    else:
        replaced = dataclasses.replace(current, **typed)
    if problems := _cross_field_problems(replaced):
        raise ValueError(f"{where}: " + "; ".join(f"{section}.{p}" for p in problems))
    return replaced
