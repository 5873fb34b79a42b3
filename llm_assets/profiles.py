"""Sizes for every stage, per profile: `smoke` (tests, minutes), `default` (laptop demo), `gpu`.

Nothing but sizes changes between profiles. Pick one with `--profile` or `LLM_ASSETS_PROFILE`.
Each section belongs to one library; add a knob to the section that uses it. `LLM_ASSETS_CONFIG` replaces
fields by name, each checked by `config_checks` (type, range, choice) with the file and field in any error.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from llm_assets.config_checks import override_problems, replace_fields, section_problems

PROFILE_ENV = "LLM_ASSETS_PROFILE"
CONFIG_ENV = "LLM_ASSETS_CONFIG"
DATA_DIR_ENV = "LLM_ASSETS_DATA_DIR"


@dataclass(frozen=True)
class SyntheticSize:
    """The synthetic world and the web crawl written about it."""

    people: int
    cities: int
    companies: int
    universities: int
    warc_files: int
    # multiplier on the number of non-encyclopedia pages (news, forum, spam, junk, ...)
    noise_scale: float = 1.0
    # share of people whose facts appear in the fine-tuning set; the rest are held out
    sft_fraction: float = 0.5


@dataclass(frozen=True)
class HeuristicThresholds:
    """Published defaults of the heuristic filters (`curation.quality.heuristics`); every one can be
    overridden by name through `CurationConfig.heuristic_overrides`."""

    # Gopher quality
    min_words: int = 50
    max_words: int = 100_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_symbol_word_ratio: float = 0.1
    max_bullet_lines_ratio: float = 0.9
    max_ellipsis_lines_ratio: float = 0.3
    min_alpha_words_ratio: float = 0.8
    min_stop_words: int = 2
    # Gopher repetition
    max_dup_line_ratio: float = 0.3
    max_dup_paragraph_ratio: float = 0.3
    max_dup_line_char_ratio: float = 0.2
    max_dup_paragraph_char_ratio: float = 0.2
    max_top_ngram_char_ratio: tuple[tuple[int, float], ...] = ((2, 0.2), (3, 0.18), (4, 0.16))
    max_dup_ngram_char_ratio: tuple[tuple[int, float], ...] = (
        (5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))
    # C4
    c4_drop_lines_without_terminal_punct: bool = True
    c4_min_words_per_line: int = 3
    c4_max_word_length: int = 1000
    c4_min_sentences: int = 5
    # FineWeb
    min_line_punct_ratio: float = 0.12
    short_line_length: int = 30
    max_short_line_ratio: float = 0.67
    max_dup_line_char_share: float = 0.01
    max_newline_word_ratio: float = 0.3

    @classmethod
    def from_config(cls, cfg: CurationConfig) -> HeuristicThresholds:
        """The published values with `cfg.heuristic_overrides` replaced (JSON lists become tuples)."""
        return replace_fields(cls(), "curation.heuristic_overrides", cfg.heuristic_overrides,
                              "CurationConfig.heuristic_overrides")


@dataclass(frozen=True)
class CurationConfig:
    # HTTP bodies longer than this are cut at reading (counted as `truncated_body`); None = no cap
    max_body_bytes: int | None = 10 << 20
    extractor: str = "resiliparse"  # or "trafilatura"
    extraction_timeout_s: float = 5.0
    min_language_score: float = 0.65
    # ISO 639-1 codes of the languages kept at extraction
    languages: tuple[str, ...] = ("en",)
    pii_action: str = "redact"  # or "drop"
    # presidio findings below this score are ignored (its "very weak" US_SSN patterns score 0.05)
    pii_score_threshold: float = 0.3
    # spaCy pipeline for presidio's NER (names): "auto" uses an installed en_core_web_* package if there is
    # one, "" turns NER off, else a package name or pipeline folder; nothing is downloaded
    pii_spacy_model: str = "auto"
    pii_ner_entities: tuple[str, ...] = ("PERSON",)
    # alt-profanity-check probability at which a line counts as toxic
    toxicity_threshold: float = 0.8
    # a page is toxic when this share of its words sits on toxic lines
    toxic_line_share: float = 0.2
    # a page is NSFW with at least this many explicit words making up at least this share of its words
    nsfw_min_words: int = 3
    nsfw_word_share: float = 0.01
    # word n-gram size of MinHash shingles (FineWeb's 5; synthetic crawls use 3, see SYNTHETIC_WEB)
    minhash_ngram: int = 5
    minhash_bands: int = 14
    minhash_rows: int = 8
    # MinHash signs at most this many words at once (a longer page in overlapping windows, with the same
    # signature): its memory is about words x bands x rows x 8 bytes (45 MB at 50,000 x 112)
    minhash_chunk_words: int = 50_000
    quality_threshold: float = 0.5
    # at most this share of pages is dropped by the quality model, lowest scores first: the model
    # separates reference pages from all others, so good news and blog pages also score under 0.5
    quality_max_drop_share: float = 0.1
    # the quality model trains on at most this many reference pages and as many others (hash-chosen)
    quality_max_train_docs: int = 20_000
    # with fewer reference texts or fewer other pages than this, the quality model is skipped (warning)
    quality_min_train_docs: int = 10
    # source weights applied by up/down-sampling, keyed by site (a host's second-level label, see
    # curation.mixture.site_of_host); sites not listed keep weight 1.0 (synthetic crawls: SYNTHETIC_WEB)
    source_weights: dict[str, float] = field(default_factory=dict)
    validation_fraction: float = 0.05
    decontamination_ngram: int = 13
    # a line on >= this many pages of one host, and on >= this share of its pages, is boilerplate
    boilerplate_min_pages: int = 3
    boilerplate_min_share: float = 0.2
    # hosts whose pages are the quality classifier's positive (high-quality) examples
    reference_hosts: tuple[str, ...] = ()
    # files of reference (high-quality) text for the quality classifier: Parquet with a `text` column,
    # JSONL with a `text` field, or plain text (one document per blank-line-separated block); a folder
    # means the files in it. With no reference hosts in the crawl and no files, the model is skipped.
    reference_files: tuple[str, ...] = ()
    # replaces published heuristic thresholds by name (see HeuristicThresholds above);
    # {} = the published values (synthetic crawls override some, see SYNTHETIC_WEB)
    heuristic_overrides: dict[str, object] = field(default_factory=dict)
    # host -> site name where the default rule (the host's second-level label) is wrong
    host_sites: dict[str, str] = field(default_factory=dict)
    workers: int = 2
    # which set of values this is: "published", or "synthetic-web" (see `curation_for`), plus the fields
    # LLM_ASSETS_CONFIG replaced; set by this module, shown in every curation stage's metadata
    settings: str = "published"

    def problems(self) -> list[str]:
        """Problems between fields (a MinHash chunk must hold at least one shingle) and of the heuristic
        overrides, each checked against the threshold it replaces."""
        problems = override_problems(HeuristicThresholds, self.heuristic_overrides, "heuristic_overrides")
        if self.minhash_chunk_words < self.minhash_ngram:
            problems.append(f"minhash_chunk_words = {self.minhash_chunk_words} must be at least minhash_ngram "
                            f"({self.minhash_ngram})")
        return problems


@dataclass(frozen=True)
class TokenizerSize:
    vocab_size: int
    shard_tokens: int = 1 << 20  # tokens per binary shard
    batch_documents: int = 256
    # BPE training reads at most this many characters of train text (in mixture order): a bounded sample
    train_characters: int = 2_000_000_000


@dataclass(frozen=True)
class ModelSize:
    n_layer: int
    n_head: int
    n_kv_head: int
    d_model: int
    d_ff: int
    context: int
    tie_embeddings: bool = True

    def problems(self) -> list[str]:
        """What makes this shape unbuildable: heads must split d_model evenly, in even (rotary) head dims."""
        problems = []
        if self.d_model % self.n_head:
            problems.append(f"d_model = {self.d_model} must be a multiple of n_head ({self.n_head})")
        elif (self.d_model // self.n_head) % 2:
            problems.append(f"d_model / n_head = {self.d_model // self.n_head} must be even (rotary)")
        if self.n_head % self.n_kv_head:
            problems.append(f"n_head = {self.n_head} must be a multiple of n_kv_head ({self.n_kv_head})")
        return problems


@dataclass(frozen=True, kw_only=True)
class Runtime:
    """Where a training program runs, in Lightning's terms; the same for every program of a profile."""

    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"


RUNTIME_FIELDS = tuple(f.name for f in dataclasses.fields(Runtime))


@dataclass(frozen=True, kw_only=True)
class TrainSize(Runtime):
    """Pretraining's sizes and schedule; its runtime fields also say where fine-tuning runs."""

    max_steps: int
    micro_batch: int
    grad_accum: int
    lr: float
    warmup_steps: int
    # training stops after this many passes over the train split's tokens when that comes before max_steps;
    # None: no limit. Repeating text past ~40 passes adds nothing (Muennighoff et al. 2023, data-constrained
    # scaling), and a small real crawl is memorized: 340 passes of the default step count over a 51-page
    # crawl ended with validation loss worse than uniform. The synthetic default crawl takes ~35 passes.
    max_epochs: float | None = 40.0
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    checkpoint_every: int = 200
    eval_every: int = 200
    eval_batches: int = 8
    compile: bool = False
    seed: int = 1337


@dataclass(frozen=True)
class SFTSize:
    max_steps: int
    micro_batch: int
    lr: float
    warmup_steps: int = 10
    # training stops after this many passes over the examples when that comes before max_steps
    epochs_of_templates: int = 3
    grad_accum: int = 1
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    checkpoint_every: int = 100
    # examples whose assistant-token loss is measured before and after fine-tuning
    eval_examples: int = 256
    seed: int = 1337
    # each single-turn conversation also in the benchmarks' plain `Question: …\nAnswer: …` form (see
    # training/sft_data.py): what makes the facts of people never fine-tuned on answerable
    plain_questions: bool = True
    # pretraining windows replayed in each micro-batch (next-token loss on all their tokens, added to the
    # examples' loss), so the assistant keeps modelling the web while it learns to answer
    replay_windows: int = 0
    # beats_base_on_heldout: the one-sided 95 % lower bound of the assistant's gain over the base on held-out
    # people's questions (paired by item) must reach this margin; blocking unless the profile says warn
    heldout_margin: float = 0.05
    heldout_check_blocks: bool = True


@dataclass(frozen=True)
class EvalSize:
    shots: int = 0
    max_items: int | None = None
    batch_size: int = 16


@dataclass(frozen=True)
class Profile:
    name: str
    synthetic: SyntheticSize
    curation: CurationConfig
    tokenizer: TokenizerSize
    model: ModelSize
    train: TrainSize
    sft: SFTSize
    eval: EvalSize
    # the LLM_ASSETS_CONFIG sections applied to this profile, kept so they also win over SYNTHETIC_WEB
    overrides: dict = field(default_factory=dict)


# Curation values for the synthetic crawl only (`curation_for(profile, synthetic=True)`); every real crawl
# gets the published values of CurationConfig. The synthetic encyclopedia pages are 15-60-word stubs:
# Gopher's published 50-word minimum and stop-word count, C4's three sentences and terminal punctuation,
# and the top-n-gram ratios (an entity's name fills them) would drop all of them (measured: 0 % survive),
# and 5-word shingles miss 3-word edits in such short pages (near-duplicate recall 0.60 against 0.83 with
# 3). Its encyclopedia host is the quality model's reference, and its sites get weights by kind.
SYNTHETIC_WEB = {
    "settings": "synthetic-web",
    "minhash_ngram": 3,
    "heuristic_overrides": {"min_words": 15, "min_stop_words": 0, "c4_min_sentences": 2,
                            "c4_drop_lines_without_terminal_punct": False, "max_top_ngram_char_ratio": ()},
    "reference_hosts": ("www.wikiverse.org",),
    "source_weights": {"wikiverse": 2.0, "citychatter": 0.5, "opentalk-forum": 0.5},
}

PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        synthetic=SyntheticSize(people=24, cities=8, companies=8, universities=5, warc_files=3,
                                noise_scale=0.5),
        curation=CurationConfig(),
        tokenizer=TokenizerSize(vocab_size=1024, shard_tokens=1 << 16),
        model=ModelSize(n_layer=2, n_head=4, n_kv_head=2, d_model=64, d_ff=176, context=128),
        train=TrainSize(max_steps=30, micro_batch=8, grad_accum=1, lr=3e-3, warmup_steps=5,
                        checkpoint_every=10, eval_every=15, eval_batches=2),
        sft=SFTSize(max_steps=100, micro_batch=16, lr=3e-3, warmup_steps=5, epochs_of_templates=10,
                    replay_windows=2, heldout_check_blocks=False),  # too small to beat the base for sure
        eval=EvalSize(shots=0, max_items=64),
    ),
    "default": Profile(
        name="default",
        synthetic=SyntheticSize(people=150, cities=20, companies=25, universities=10,
                                warc_files=8, noise_scale=1.0),
        curation=CurationConfig(),
        tokenizer=TokenizerSize(vocab_size=4096, shard_tokens=1 << 20),
        model=ModelSize(n_layer=6, n_head=6, n_kv_head=2, d_model=192, d_ff=512, context=256),
        train=TrainSize(max_steps=1000, micro_batch=16, grad_accum=1, lr=2e-3, warmup_steps=100,
                        checkpoint_every=250, eval_every=250, eval_batches=8),
        sft=SFTSize(max_steps=300, micro_batch=32, lr=5e-4, warmup_steps=30, replay_windows=8),
        eval=EvalSize(shots=0),
    ),
    "gpu": Profile(
        name="gpu",
        synthetic=SyntheticSize(people=3000, cities=120, companies=300, universities=60,
                                warc_files=32, noise_scale=1.0),
        curation=CurationConfig(workers=8),
        tokenizer=TokenizerSize(vocab_size=32768, shard_tokens=1 << 24),
        model=ModelSize(n_layer=12, n_head=12, n_kv_head=12, d_model=768, d_ff=2048, context=1024),
        train=TrainSize(max_steps=5000, micro_batch=32, grad_accum=4, lr=6e-4, warmup_steps=200,
                        checkpoint_every=500, eval_every=500, eval_batches=20,
                        precision="bf16-mixed", accelerator="gpu", compile=True),
        sft=SFTSize(max_steps=1000, micro_batch=32, lr=5e-5, warmup_steps=50, replay_windows=8),
        eval=EvalSize(shots=0, batch_size=64),
    ),
}


def validate_profile(profile: Profile, where: str = "profile") -> Profile:
    """`profile` if every section's values are allowed, else a ValueError naming `where` and each problem."""
    problems = [f"{f.name}.{p}" for f in dataclasses.fields(profile) if f.name not in ("name", "overrides")
                for p in section_problems(getattr(profile, f.name))]
    if problems:
        raise ValueError(f"{where}: {'; '.join(problems)}")
    return profile


def _replace_section(current, section: str, values: dict, where: str):
    """`current` with `values` replaced and checked; curation's `settings` says which fields were replaced."""
    if section == "curation" and isinstance(values, dict) and "settings" in values:
        raise ValueError(f"{where}: curation.settings is set from the kind of crawl (synthetic or not), "
                         "not by configuration; set the fields themselves")
    replaced = replace_fields(current, section, values, where)
    if section == "curation" and values:
        replaced = dataclasses.replace(
            replaced, settings=f"{current.settings} + overrides: {', '.join(sorted(values))}")
    return replaced


def apply_overrides(profile: Profile, overrides: dict, where: str) -> Profile:
    """`profile` with fields replaced per section, e.g. {"curation": {"minhash_ngram": 5}}."""
    if not isinstance(overrides, dict):
        raise ValueError(f"{where}: expected a JSON object of sections, got {type(overrides).__name__}")
    changes = {}
    kept = {section: dict(values) for section, values in profile.overrides.items()}
    for section, values in overrides.items():
        current = getattr(profile, section, None) if section not in ("name", "overrides") else None
        if current is None or not dataclasses.is_dataclass(current):
            sections = [f.name for f in dataclasses.fields(Profile) if f.name not in ("name", "overrides")]
            raise ValueError(f"{where}: unknown section {section!r}; sections are {', '.join(sections)}")
        changes[section] = _replace_section(current, section, values, where)
        kept.setdefault(section, {}).update(values)
    return dataclasses.replace(profile, **changes, overrides=kept)


def curation_for(profile: Profile, synthetic: bool) -> CurationConfig:
    """The curation values for a crawl: the published ones (`profile.curation`), or with `synthetic` the
    SYNTHETIC_WEB values on top; the user's LLM_ASSETS_CONFIG overrides win over both."""
    if not synthetic:
        return profile.curation
    cfg = dataclasses.replace(profile.curation, **SYNTHETIC_WEB)
    user = profile.overrides.get("curation", {})
    return _replace_section(cfg, "curation", user, CONFIG_ENV) if user else cfg


def get_profile(name: str | None = None) -> Profile:
    """The named profile, else `$LLM_ASSETS_PROFILE`, else `default`; with `$LLM_ASSETS_CONFIG` applied.

    `LLM_ASSETS_CONFIG` names a JSON file of per-section overrides, e.g.
    `{"curation": {"minhash_ngram": 5, "heuristic_overrides": {}}, "train": {"max_steps": 3000}}`.
    Its `curation` holds the published values; `curation_for(profile, synthetic)` gives a crawl's.
    """
    name = name or os.environ.get(PROFILE_ENV) or "default"
    try:
        profile = PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown profile {name!r} (from --profile or ${PROFILE_ENV}); "
            f"choose one of {', '.join(PROFILES)}"
        ) from None
    config = os.environ.get(CONFIG_ENV)
    if config:
        try:
            overrides = json.loads(Path(config).read_text())
        except FileNotFoundError:
            raise ValueError(f"${CONFIG_ENV} names {config}, which does not exist") from None
        except json.JSONDecodeError as err:
            raise ValueError(f"{config}: not valid JSON ({err})") from None
        profile = apply_overrides(profile, overrides, config)
    return validate_profile(profile, config or f"profile {name!r}")


def data_dir() -> str:
    """The lake root: `$LLM_ASSETS_DATA_DIR`, default `./data`."""
    return os.environ.get(DATA_DIR_ENV) or os.path.abspath("data")


