"""Quality: the heuristic rule families (Gopher, C4, FineWeb), then a linear quality classifier.

The rule families are filters like every other keep/drop rule (`curation.filters.heuristic_filters`); a
dropped page gets a reason such as `gopher_quality:mean_word_length`. Thresholds default to the published
values (Gopher: Rae et al. 2021; C4: Raffel et al. 2020; FineWeb: Penedo et al. 2024) and live in
`HeuristicThresholds`; `CurationConfig.heuristic_overrides` replaces any of them by name.

The classifier is logistic regression on hashed word unigrams and bigrams, trained on reference
("high quality") text against other crawl pages. Reference text is the pages of `cfg.reference_hosts` in
the crawl (the encyclopedia of a synthetic crawl), the texts of `cfg.reference_files` (Parquet `text`
column, JSONL `text` field, or plain text with one document per blank-line-separated block), or both.
With no reference text, or too few documents on either side, the model is skipped: `metrics.json` says
why, no model file exists, and the quality stage keeps every document the heuristics pass. Its weights
are saved as safetensors, so loading it runs no pickled code.

Modules: `classifier` (the linear model: training set, training, scores), `reference` (reading reference
text files), `filtering` (the stage: the heuristic filters, then the model's threshold over all parts).
"""

from .classifier import (
    METRICS_FILE,
    MODEL_FILE,
    QualityModelSkipped,
    quality_scores,
    stable_fraction,
    train_quality_classifier,
    trained_model,
    training_documents,
)
from .filtering import (
    STAGE,
    effective_threshold,
    filter_quality,
    filter_quality_parts,
    score_quality,
    split_by_score,
)
from .reference import REFERENCE_SUFFIXES, read_reference_texts

__all__ = [
    "METRICS_FILE",
    "MODEL_FILE",
    "REFERENCE_SUFFIXES",
    "STAGE",
    "QualityModelSkipped",
    "effective_threshold",
    "filter_quality",
    "filter_quality_parts",
    "quality_scores",
    "read_reference_texts",
    "score_quality",
    "split_by_score",
    "stable_fraction",
    "train_quality_classifier",
    "trained_model",
    "training_documents",
]
