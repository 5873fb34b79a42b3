"""Quality: heuristic rule families (Gopher, C4, FineWeb) and a linear quality classifier.

Each rule family is one small class; calling it on a text returns `None` to keep the document or a
reason such as `gopher_quality:mean_word_length`. Thresholds default to the published values
(Gopher: Rae et al. 2021; C4: Raffel et al. 2020; FineWeb: Penedo et al. 2024) and live in
`HeuristicThresholds`; `CurationConfig.heuristic_overrides` replaces any of them by name.

The classifier is logistic regression on hashed word unigrams and bigrams, trained on reference
("high quality") text against other crawl pages. Reference text is the pages of `cfg.reference_hosts` in
the crawl (the encyclopedia of a synthetic crawl), the texts of `cfg.reference_files` (Parquet `text`
column, JSONL `text` field, or plain text with one document per blank-line-separated block), or both.
With no reference text, or too few documents on either side, the model is skipped: `metrics.json` says
why, no model file exists, and the quality stage keeps every document the heuristics pass. Its weights
are saved as safetensors, so loading it runs no pickled code.

Modules: `heuristics` (the rule families), `classifier` (the linear model: training set, training, scores),
`reference` (reading reference text files), `filtering` (the stage: heuristics, then the model's threshold).
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
from .heuristics import (
    C4Rules,
    FineWebRules,
    GopherQuality,
    GopherRepetition,
    HeuristicThresholds,
    apply_heuristics,
)
from .reference import REFERENCE_SUFFIXES, read_reference_texts

__all__ = [
    "METRICS_FILE",
    "MODEL_FILE",
    "REFERENCE_SUFFIXES",
    "STAGE",
    "C4Rules",
    "FineWebRules",
    "GopherQuality",
    "GopherRepetition",
    "HeuristicThresholds",
    "QualityModelSkipped",
    "apply_heuristics",
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
