"""Typed, range-checked values for configuration sections: the profiles' and the training programs' JSON.

A section is a frozen dataclass (`llm_assets.settings`); its annotations give the types (a JSON list becomes
a tuple, an int a float) and each field's rule sits beside it (`share(0.3)`, `one_of(...)`, `checked(...)`).
Every problem names the section and field, and callers add the file, so a bad value in a config file is
found without reading code.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable

# A field without a rule of its own: an int must be > 0, a float >= 0 (both finite). A section's own
# `problems()` method, when it has one, checks between fields.

Rule = tuple[Callable[[object], bool], str]
POSITIVE: Rule = (lambda v: v > 0, "> 0")
NON_NEGATIVE: Rule = (lambda v: v >= 0, ">= 0")
SHARE: Rule = (lambda v: 0 <= v <= 1, "in [0, 1]")
NGRAM: Rule = (lambda v: 1 <= v <= 64, "in 1..64")  # the n-gram hashes combine at most 64 words
NGRAM_SHARES: Rule = (lambda v: all(1 <= n <= 64 and 0 <= share <= 1 for n, share in v),
                      "a list of [n in 1..64, share in [0, 1]] pairs")
_RULE = "rule"


def checked(rule: Rule, default=dataclasses.MISSING, factory=dataclasses.MISSING):
    """A dataclass field whose values must pass `rule` (on top of the field's type)."""
    return dataclasses.field(default=default, default_factory=factory, metadata={_RULE: rule})


def share(default=dataclasses.MISSING):
    """A field in [0, 1]."""
    return checked(SHARE, default)


def non_negative(default=dataclasses.MISSING):
    """A count or amount that may be 0 (0 usually turns its thing off)."""
    return checked(NON_NEGATIVE, default)


def positive(default=dataclasses.MISSING):
    """A number that must be > 0 (a float field's own default only asks for >= 0)."""
    return checked(POSITIVE, default)


def one_of(choices: tuple[str, ...], default: str | None = None):
    """A field whose value is one of `choices` (default: the first)."""
    rule = (lambda v: v in choices), "one of " + ", ".join(repr(c) for c in choices)
    return checked(rule, choices[0] if default is None else default)


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
    rule = next(f.metadata.get(_RULE) for f in dataclasses.fields(cls) if f.name == name)
    if rule is None and typed is not None and not isinstance(typed, bool):
        rule = POSITIVE if isinstance(typed, int) else NON_NEGATIVE if isinstance(typed, float) else None
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
