"""Argument types that range-check numeric options in the parser: a bad value is one usage line, exit 2."""

from __future__ import annotations

import argparse
import math


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1 (counts and sizes: tokens, items, a batch, workers)."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def non_negative_int(text: str) -> int:
    """A whole number >= 0 (shots, seeds)."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (a sampling temperature: 0 is greedy)."""
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value:g} must be 0 or more")
    return value


def probability(text: str) -> float:
    """A nucleus mass in (0, 1]: 0 would keep no token."""
    value = _finite(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{value:g} must be above 0 and at most 1")
    return value
