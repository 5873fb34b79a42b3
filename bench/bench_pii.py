"""PII detection speed: our pre-scanned presidio (`curation.pii.find_pii`) against presidio on all text.

    python bench/bench_pii.py [--profile default] [--seed 0] [--threshold 0.3] [--repeat 1]

Builds the synthetic crawl of the profile, extracts its documents, then times both paths over the same
texts in this process, alternating (presidio's one-off start-up excluded from both), checks the findings are
identical, and prints one table.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm_assets.crawl import read_warc  # noqa: E402
from llm_assets.curation import pii  # noqa: E402
from llm_assets.curation.extraction import extract_documents  # noqa: E402
from llm_assets.profiles import get_profile  # noqa: E402
from llm_assets.synthetic import generate_crawl  # noqa: E402


def crawl_texts(profile: str, seed: int) -> list[str]:
    prof = get_profile(profile)
    with tempfile.TemporaryDirectory() as tmp:
        generate_crawl(tmp, seed=seed, size=prof.synthetic, profile_name=prof.name)
        raw = pl.concat([read_warc(str(p)).records for p in sorted(Path(tmp).glob("crawl-*.warc.gz"))])
    docs, _ = extract_documents(raw, prof.curation)
    return docs["text"].to_list()


def timed(fns, texts, threshold, repeat):
    """Best time and output of each function, the runs of all of them alternating (so a slow spell of the
    machine falls on both)."""
    best = [float("inf")] * len(fns)
    outs = [None] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            outs[i] = fn(texts, score_threshold=threshold)
            best[i] = min(best[i], time.perf_counter() - start)
    return list(zip(best, outs, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threshold", type=float, default=None,
                        help="presidio score threshold (default: the profile's pii_score_threshold)")
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs per path, the paths alternating")
    parser.add_argument("--spacy-model", default="",
                        help="a spaCy package or pipeline folder: both paths add presidio's NER (PERSON)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    threshold = get_profile(args.profile).curation.pii_score_threshold if args.threshold is None else args.threshold

    texts = crawl_texts(args.profile, args.seed)
    model = pii.resolve_spacy_model(args.spacy_model)
    reference = functools.partial(pii.find_pii_reference, spacy_model=model)
    fast = functools.partial(pii.find_pii, spacy_model=model)
    for warm in (reference, fast):  # presidio start-up, tldextract, metadata, spaCy load: not timed
        warm(["warm up a@b.com +1 212 734 5521"])
    print(f"profile={args.profile} seed={args.seed} threshold={threshold} repeat={args.repeat} spacy={model}")
    print(f"{'corpus':<22}{'path':<30}{'docs':>6}{'MB':>7}{'findings':>9}{'analyzed':>9}{'seconds':>9}"
          f"{'docs/s':>9}{'MB/s':>8}{'speedup':>8}{'identical':>10}")
    ref_all = None
    failures = 0
    for corpus in ("all documents", "documents without PII"):
        if corpus == "documents without PII":
            # the common case on the real web, where PII is far rarer than on the synthetic forum pages
            texts = [t for t, found in zip(texts, ref_all, strict=True) if not found]
        mb = sum(len(t.encode()) for t in texts) / 1e6
        (ref_s, ref), (fast_s, found) = timed([reference, fast], texts, threshold, args.repeat)
        ref_all = ref_all or ref
        identical = found == ref
        failures += not identical
        if model:  # NER sees all text, batched through spaCy
            analyzed, fast_name = 1.0, "presidio + NER, batched"
        else:
            windows = pii.candidate_windows(texts)
            analyzed = sum(end - start for spans in windows.values() for _, start, end in spans) / max(
                sum(map(len, texts)), 1)
            fast_name = "pre-scan + presidio on windows"
        for name, secs, share in (("presidio on all text", ref_s, 1.0), (fast_name, fast_s, analyzed)):
            print(f"{corpus:<22}{name:<30}{len(texts):>6}{mb:>7.2f}{sum(map(len, ref)):>9}{share:>9.1%}"
                  f"{secs:>9.2f}{len(texts) / secs:>9.1f}{mb / secs:>8.3f}{ref_s / secs:>7.1f}x{identical!s:>10}")
    if failures:
        raise SystemExit("findings differ from presidio's")


if __name__ == "__main__":
    main()
