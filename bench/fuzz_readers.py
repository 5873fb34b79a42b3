"""Longer fuzzing of the benchmark and SFT file readers than the test suite's fixed budget.

    python bench/fuzz_readers.py --examples 2000 [--seed N]

Runs the properties of tests/test_fuzz_readers.py (same input strategies, same outcome rule: a parsed result
the next stage can use, or one ValueError line naming the file) with a random seed and prints, per reader,
how many inputs parsed, how many ended in a clear error, the time taken and the process's peak memory.
A property that fails prints Hypothesis's smallest failing input and the script exits non-zero.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import test_fuzz_readers as fuzz  # noqa: E402
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402

from llm_assets.benchmarks import load_items  # noqa: E402
from llm_assets.evaluation import generative  # noqa: E402
from llm_assets.training.sft_data import load_conversations  # noqa: E402

READERS = {
    "benchmark jsonl": ("bench.jsonl", fuzz.jsonl_files(fuzz.BENCHMARK_ROWS), load_items),
    "mmlu csv": ("mmlu_astronomy_test.csv", fuzz.csv_files(), load_items),
    "open questions": ("open.jsonl", fuzz.jsonl_files(fuzz.OPEN_ROWS), generative.load_open_questions),
    "sft jsonl": ("sft.jsonl", fuzz.jsonl_files(fuzz.SFT_ROWS), lambda path: load_conversations([path])),
}


def run(name: str, examples: int, run_seed: int, folder: Path) -> dict:
    file_name, strategy, read = READERS[name]
    counts = {"parsed": 0, "error": 0}

    @seed(run_seed)
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=strategy)
    def check(data: bytes) -> None:
        path = folder / file_name
        path.write_bytes(data)
        counts["parsed" if fuzz.outcome(read, path) is not None else "error"] += 1

    started = time.perf_counter()
    check()
    return {**counts, "seconds": time.perf_counter() - started}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="inputs per reader")
    parser.add_argument("--seed", type=int, default=int(time.time()), help="Hypothesis seed (default: the clock)")
    args = parser.parse_args()
    print(f"seed {args.seed}, {args.examples} inputs per reader (Hypothesis may stop early once it has "
          f"explored a strategy)")
    print(f"{'reader':<16} {'inputs':>7} {'parsed':>7} {'errors':>7} {'seconds':>8}")
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for name in READERS:
            try:
                row = run(name, args.examples, args.seed, Path(tmp))
            except Exception as err:  # a property failed: Hypothesis has printed the input
                print(f"{name:<16} FAILED: {type(err).__name__}: {str(err)[:200]}")
                failed = True
                continue
            total = row["parsed"] + row["error"]
            print(f"{name:<16} {total:>7} {row['parsed']:>7} {row['error']:>7} {row['seconds']:>8.1f}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
