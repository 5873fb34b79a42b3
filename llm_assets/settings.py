"""The configuration sections, one frozen dataclass per library that reads it, each field's rule beside it.

Types come from the annotations; ranges and choices from the field's rule (`share`, `one_of`, `checked`, ...
in `config_checks`); a field without one: an int must be > 0, a float >= 0. `profiles` fills these sections
per profile and loads the user's overrides; every value is checked when it is loaded.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from llm_assets.config_checks import (
    NGRAM,
    NGRAM_SHARES,
    checked,
    non_negative,
    one_of,
    override_problems,
    positive,
    replace_fields,
    share,
)

EXTRACTORS = ("resiliparse", "trafilatura")
# what `CurationConfig.off` may switch off: every filter by its name (`curation.filters`), and two stages'
# work as a whole; a test keeps this list equal to the filters' names
SWITCHES = ("language", "url_blocklist", "nsfw_words", "toxic", "pii", "gopher_quality", "gopher_repetition", "c4",
            "fineweb", "quality_model", "dedup")
PII_ACTIONS = ("redact", "drop")
# Lightning's precision and accelerator names
PRECISIONS = ("auto", "32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true",
              "transformer-engine", "transformer-engine-float16")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
LANGUAGE_CODES = ((lambda v: len(v) > 0 and all(2 <= len(c) <= 3 and c.isalpha() for c in v)),
                  "a non-empty list of ISO 639 codes such as [\"en\", \"de\"]")
WEIGHTS = ((lambda v: all(w >= 0 for w in v.values())), "an object of site: weight >= 0")
DEVICES = ((lambda v: (v >= 1 or v == -1) if isinstance(v, int) else v.strip() != ""),
           "a count >= 1, -1 (all), or a string such as \"auto\" or \"0,1\"")


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
    sft_fraction: float = share(0.5)


@dataclass(frozen=True)
class HeuristicThresholds:
    """Published defaults of the heuristic filters (`curation.filters`: gopher, c4, fineweb); every one
    can be overridden by name through `CurationConfig.heuristic_overrides`."""

    # Gopher quality
    min_words: int = non_negative(50)  # a minimum of 0 turns its rule off
    max_words: int = 100_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_symbol_word_ratio: float = share(0.1)
    max_bullet_lines_ratio: float = share(0.9)
    max_ellipsis_lines_ratio: float = share(0.3)
    min_alpha_words_ratio: float = share(0.8)
    min_stop_words: int = non_negative(2)
    # Gopher repetition
    max_dup_line_ratio: float = share(0.3)
    max_dup_paragraph_ratio: float = share(0.3)
    max_dup_line_char_ratio: float = share(0.2)
    max_dup_paragraph_char_ratio: float = share(0.2)
    max_top_ngram_char_ratio: tuple[tuple[int, float], ...] = checked(NGRAM_SHARES, ((2, 0.2), (3, 0.18), (4, 0.16)))
    max_dup_ngram_char_ratio: tuple[tuple[int, float], ...] = checked(NGRAM_SHARES, (
        (5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)))
    # C4
    c4_drop_lines_without_terminal_punct: bool = True
    c4_min_words_per_line: int = non_negative(3)
    c4_max_word_length: int = 1000
    c4_min_sentences: int = non_negative(5)
    # FineWeb
    min_line_punct_ratio: float = share(0.12)
    short_line_length: int = 30
    max_short_line_ratio: float = share(0.67)
    max_dup_line_char_share: float = share(0.01)
    max_newline_word_ratio: float = share(0.3)

    @classmethod
    def from_config(cls, cfg: CurationConfig) -> HeuristicThresholds:
        """The published values with `cfg.heuristic_overrides` replaced (JSON lists become tuples)."""
        return replace_fields(cls(), "curation.heuristic_overrides", cfg.heuristic_overrides,
                              "CurationConfig.heuristic_overrides")


@dataclass(frozen=True)
class CurationConfig:
    # HTTP bodies longer than this are cut at reading (counted as `truncated_body`); None = no cap
    max_body_bytes: int | None = 10 << 20
    extractor: str = one_of(EXTRACTORS)
    extraction_timeout_s: float = positive(5.0)
    min_language_score: float = share(0.65)
    # ISO 639-1 codes of the languages kept at extraction
    languages: tuple[str, ...] = checked(LANGUAGE_CODES, ("en",))
    pii_action: str = one_of(PII_ACTIONS)
    # presidio findings below this score are ignored (its "very weak" US_SSN patterns score 0.05)
    pii_score_threshold: float = share(0.3)
    # spaCy pipeline for presidio's NER (names): "auto" uses an installed en_core_web_* package if there is
    # one, "" turns NER off, else a package name or pipeline folder; nothing is downloaded
    pii_spacy_model: str = "auto"
    pii_ner_entities: tuple[str, ...] = ("PERSON",)
    # alt-profanity-check probability at which a line counts as toxic
    toxicity_threshold: float = share(0.8)
    # a page is toxic when this share of its words sits on toxic lines
    toxic_line_share: float = share(0.2)
    # a page is NSFW with at least this many explicit words making up at least this share of its words
    nsfw_min_words: int = 3
    nsfw_word_share: float = share(0.01)
    # word n-gram size of MinHash shingles (FineWeb's 5; synthetic crawls use 3, see SYNTHETIC_WEB)
    minhash_ngram: int = checked(NGRAM, 5)
    minhash_bands: int = 14
    minhash_rows: int = checked(NGRAM, 8)
    # MinHash signs at most this many words at once (a longer page in overlapping windows, with the same
    # signature): its memory is about words x bands x rows x 8 bytes (45 MB at 50,000 x 112)
    minhash_chunk_words: int = 50_000
    quality_threshold: float = share(0.5)
    # at most this share of pages is dropped by the quality model, lowest scores first: the model
    # separates reference pages from all others, so good news and blog pages also score under 0.5
    quality_max_drop_share: float = share(0.1)
    # the quality model trains on at most this many reference pages and as many others (hash-chosen)
    quality_max_train_docs: int = 20_000
    # with fewer reference texts or fewer other pages than this, the quality model is skipped (warning)
    quality_min_train_docs: int = 10
    # source weights applied by up/down-sampling, keyed by site (a host's second-level label, see
    # curation.mixture.site_of_host); sites not listed keep weight 1.0 (synthetic crawls: SYNTHETIC_WEB)
    source_weights: dict[str, float] = checked(WEIGHTS, factory=dict)
    validation_fraction: float = checked(((lambda v: 0 <= v < 1), "in [0, 1)"), 0.05)
    decontamination_ngram: int = checked(NGRAM, 13)
    # a line on >= this many pages of one host, and on >= this share of its pages, is boilerplate
    boilerplate_min_pages: int = 3
    boilerplate_min_share: float = share(0.2)
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
    # rules and stages switched off, by name (SWITCHES): a filter keeps every page, "quality_model" is not
    # trained (its stage keeps what the heuristics pass), "dedup" keeps every page with its text as it came
    off: tuple[str, ...] = checked(((lambda v: set(v) <= set(SWITCHES)),
                                    "a list of names from " + ", ".join(SWITCHES)), ())
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

    accelerator: str = one_of(ACCELERATORS)
    devices: int | str = checked(DEVICES, 1)
    num_nodes: int = 1
    strategy: str = checked(((lambda v: v.strip() != ""), "a strategy name such as \"auto\" or \"ddp\""), "auto")
    precision: str = one_of(PRECISIONS, "32-true")


RUNTIME_FIELDS = tuple(f.name for f in dataclasses.fields(Runtime))


@dataclass(frozen=True, kw_only=True)
class TrainSize(Runtime):
    """Pretraining's sizes and schedule; its runtime fields also say where fine-tuning runs."""

    max_steps: int
    micro_batch: int
    grad_accum: int
    lr: float = positive()
    warmup_steps: int = non_negative()
    # training stops after this many passes over the train split's tokens when that comes before max_steps;
    # None: no limit. Repeating text past ~40 passes adds nothing (Muennighoff et al. 2023, data-constrained
    # scaling), and a small real crawl is memorized: 340 passes of the default step count over a 51-page
    # crawl ended with validation loss worse than uniform. The synthetic default crawl takes ~35 passes.
    max_epochs: float | None = positive(40.0)
    min_lr_ratio: float = share(0.1)
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    checkpoint_every: int = non_negative(200)
    eval_every: int = non_negative(200)
    eval_batches: int = non_negative(8)
    compile: bool = False
    seed: int = non_negative(1337)


@dataclass(frozen=True)
class SFTSize:
    max_steps: int
    micro_batch: int
    lr: float = positive()
    warmup_steps: int = non_negative(10)
    # training stops after this many passes over the examples when that comes before max_steps
    epochs_of_templates: int = non_negative(3)
    grad_accum: int = 1
    min_lr_ratio: float = share(0.1)
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    checkpoint_every: int = non_negative(100)
    # examples whose assistant-token loss is measured before and after fine-tuning
    eval_examples: int = non_negative(256)
    seed: int = non_negative(1337)
    # each single-turn conversation also in the benchmarks' plain `Question: …\nAnswer: …` form (see
    # training/sft_data.py): what makes the facts of people never fine-tuned on answerable
    plain_questions: bool = True
    # pretraining windows replayed in each micro-batch (next-token loss on all their tokens, added to the
    # examples' loss), so the assistant keeps modelling the web while it learns to answer
    replay_windows: int = non_negative(0)
    # beats_base_on_heldout: the one-sided 95 % lower bound of the assistant's gain over the base on held-out
    # people's questions (paired by item) must reach this margin; blocking unless the profile says warn
    heldout_margin: float = share(0.05)
    heldout_check_blocks: bool = True


@dataclass(frozen=True)
class EvalSize:
    shots: int = non_negative(0)
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
