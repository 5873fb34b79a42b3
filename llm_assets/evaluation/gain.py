"""Is one model better than another on the same items, by a margin, with confidence?"""

from __future__ import annotations

import math
from collections.abc import Sequence

Z_95_ONE_SIDED = 1.6449


def paired_gain(base: Sequence[float], other: Sequence[float], margin: float, z: float = Z_95_ONE_SIDED) -> dict:
    """`other`'s accuracy gain over `base` on the same items (0/1 each, in the same order), with the one-sided
    lower confidence bound of the mean paired difference (normal approximation, sample variance). `passed`
    when that bound reaches `margin`: with few items the bound is wide and a small gain does not pass."""
    if len(base) != len(other):
        raise ValueError(f"paired_gain: {len(base)} base items but {len(other)} other items; score the same items")
    n = len(base)
    if n == 0:
        return {"gain": None, "lower_bound": None, "margin": margin, "items": 0, "passed": False}
    diffs = [o - b for b, o in zip(base, other, strict=True)]
    mean = sum(diffs) / n
    variance = sum((d - mean) ** 2 for d in diffs) / (n - 1) if n > 1 else 0.0
    lower = mean - z * math.sqrt(variance / n) if n > 1 else None  # one item bounds nothing
    return {"gain": mean, "lower_bound": lower, "margin": margin, "items": n,
            "passed": lower is not None and lower >= margin}
