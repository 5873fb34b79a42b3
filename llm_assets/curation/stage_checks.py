"""The data-quality checks of the curation stages, as plain functions of a stage's run and its figures.

Each returns an `Outcome`; the stage table (`stages.STAGES`) names which checks a stage has, and the Dagster
assets made from it report them as asset checks. A check that protects expensive downstream work blocks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import polars as pl

from llm_assets.lake import kept_path, scan_parts, uri
from llm_assets.text import normalized_text

if TYPE_CHECKING:
    from llm_assets.curation.stages import StageRun


@dataclass(frozen=True)
class Outcome:
    """A check's result: whether it passed, whether a failure blocks (else it warns), its figures, and the
    one sentence a user reads when it fails."""

    passed: bool
    blocks: bool = True
    figures: dict = field(default_factory=dict)
    description: str | None = None


@dataclass(frozen=True)
class StageCheck:
    """One check of a stage: its name, what it asserts (`description`), whether it may block downstream work,
    and `evaluate(run, figures) -> Outcome`."""

    name: str
    description: str
    evaluate: Callable[[StageRun, dict], Outcome]
    blocking: bool = False


def _kept(run: StageRun, stage: str) -> pl.LazyFrame:
    return scan_parts([kept_path(run.lake, stage, part) for part in run.parts])


def has_extracted_text(run: StageRun, figures: dict) -> Outcome:
    kept = sum(counts[0] for counts in figures["parts"].values())
    reasons: Counter = Counter()
    for counts in figures["parts"].values():
        reasons.update(counts[2])
    records = figures["input"]
    return Outcome(kept > 0, False, {"documents": kept, "records": records, "removed_by_reason": dict(reasons)},
                   None if kept else f"extracted_documents of {', '.join(run.parts)} has no text page: its "
                   f"{records} records are {', '.join(reasons) or 'none'}")


def no_empty_text(run: StageRun, figures: dict) -> Outcome:
    empty = _kept(run, "extracted_documents").filter(
        pl.col("text").str.strip_chars().str.len_chars() == 0).select(pl.len()).collect().item()
    return Outcome(empty == 0, False, {"empty": empty})


def no_residual_pii(run: StageRun, figures: dict) -> Outcome:
    from llm_assets.curation import filtration, pii

    texts = [t for part in run.parts
             for t in pl.read_parquet(uri(kept_path(run.lake, "filtered_documents", part)))["text"].to_list()]
    found = pii.find_pii(texts, **filtration.pii_settings(run.cfg))  # what redaction used
    residual = [text[f.start:f.end] for text, spans in zip(texts, found, strict=True) for f in spans]
    return Outcome(not residual, True, {"findings": len(residual), "examples": residual[:5]})


def no_exact_duplicates(run: StageRun, figures: dict) -> Outcome:
    hashes = _kept(run, "deduplicated_documents").select(normalized_text(pl.col("text")).hash().alias("h")).collect()
    dupes = hashes.height - hashes["h"].n_unique()
    return Outcome(dupes == 0, True, {"duplicates": dupes})


def reference_text(run: StageRun, figures: dict) -> Outcome:
    if figures["skipped"]:
        return Outcome(False, False, {"skipped": figures["skip_reason"]}, skipped_sentence(figures))
    return Outcome(True, False, {"reference_documents": figures["reference_documents"],
                                 "reference_from_files": figures["reference_from_files"]})


def skipped_sentence(figures: dict) -> str:
    """What a user reads when the quality model was not trained."""
    return (f"quality model skipped: {figures['skip_reason']}; quality_documents keeps what the heuristics "
            "pass")


def validation_f1(run: StageRun, figures: dict) -> Outcome:
    if figures["skipped"]:
        return Outcome(True, False, {"skipped": "no model was trained"})
    f1 = figures.get("f1")
    return Outcome(f1 is not None and f1 >= 0.8, False, {"f1": f1}, None if f1 is not None else
                   "quality_classifier has no validation documents to measure F1 on")


def has_quality_documents(run: StageRun, figures: dict) -> Outcome:
    kept = sum(counts[0] for counts in figures["parts"].values())
    return Outcome(kept > 0, False, {"documents": kept}, None if kept else "quality_documents kept 0 documents: "
                   "every one was removed before or by the quality filters (see removed_by_reason)")


def _mixture_files(run: StageRun) -> list:
    return [kept_path(run.lake, "training_mixture", part) for part in run.parts]


def splits_nonempty(run: StageRun, figures: dict) -> Outcome:
    from llm_assets.curation import report

    documents = report.split_documents(_mixture_files(run))
    train, validation = documents["train"], documents["validation"]
    counts = {"train_documents": train, "validation_documents": validation}
    if not train:
        return Outcome(False, True, counts, f"training_mixture has 0 train documents: nothing to train the "
                       f"tokenizer on ({validation} validation; see the removed_by_reason of the curation stages)")
    return Outcome(validation > 0, False, counts, None if validation else f"training_mixture has {train} train "
                   "documents and 0 validation documents: validation loss cannot be measured")


def split_by_document(run: StageRun, figures: dict) -> Outcome:
    from llm_assets.curation import report

    both = report.split_documents(_mixture_files(run))["on_both_sides"]
    return Outcome(both == 0, True, {"documents_on_both_sides": both})


def decontaminated(run: StageRun, figures: dict) -> Outcome:
    from llm_assets.curation import mixture

    leaked = mixture.contaminated_rows(_mixture_files(run), list(run.benchmark_files), run.cfg.decontamination_ngram)
    return Outcome(leaked == 0, True, {"contaminated_rows": leaked})
