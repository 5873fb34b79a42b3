"""Longer fuzzing of the WARC framing and the HTTP payload decoder than the test suite's fixed budget.

    python bench/fuzz_parsers.py --examples 2000 [--seed N] [--target "warc files"]

Runs the properties of tests/test_fuzz_warc.py (same input strategies, same rule: every input ends under
counted outcomes or one clear error, bodies within the cap, memory bounded) with a random seed, and prints
per target the examples run, the findings (properties that failed, with Hypothesis's smallest failing input
cut to a line), the time taken and the process's peak memory. Exits non-zero when there is a finding.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import test_fuzz_warc as fuzz  # noqa: E402
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402


def run(name: str, examples: int, run_seed: int, folder: Path) -> dict:
    inputs, check, _ = fuzz.TARGETS[name]
    count = {"examples": 0}

    @seed(run_seed)
    @settings(max_examples=examples, deadline=None, database=None, print_blob=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(case=inputs)
    def prop(case) -> None:
        count["examples"] += 1
        check(case, folder)

    started = time.perf_counter()
    finding = None
    try:
        prop()
    except Exception as exc:  # a failed property: Hypothesis re-raises it after shrinking the input
        note = " ".join(getattr(exc, "__notes__", [])[:1])
        finding = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]} {note[:300]}"
    return {"examples": count["examples"], "seconds": time.perf_counter() - started, "finding": finding}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--examples", type=int, default=1000, help="examples per target (bombs get a tenth)")
    ap.add_argument("--seed", type=int, default=None, help="default: a random seed, printed")
    ap.add_argument("--target", choices=sorted(fuzz.TARGETS), action="append")
    args = ap.parse_args()
    run_seed = args.seed if args.seed is not None else random.randrange(2**32)
    print(f"seed {run_seed}, {args.examples} examples per target\n")
    print(f"{'target':<18} {'examples':>9} {'seconds':>8} {'peak RSS':>9}  findings")
    findings = 0
    for name in args.target or list(fuzz.TARGETS):
        examples = max(1, args.examples // 10) if name == "member bombs" else args.examples
        with tempfile.TemporaryDirectory(prefix="fuzz-") as folder:
            r = run(name, examples, run_seed, Path(folder))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        findings += r["finding"] is not None
        print(f"{name:<18} {r['examples']:>9} {r['seconds']:>8.1f} {peak:>7.0f}MB  {r['finding'] or 'none'}",
              flush=True)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
