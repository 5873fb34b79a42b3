"""Sizes for every stage, per profile: `smoke` (tests, minutes), `default` (laptop demo), `gpu`.

Nothing but sizes changes between profiles. Pick one with `--profile` or `LLM_ASSETS_PROFILE`.
The sections are defined in `settings` (each belongs to one library; add a knob to the section that uses
it, with its rule beside it). `LLM_ASSETS_CONFIG` replaces fields by name, each checked when it is loaded
(type, range, choice, nested overrides) with the file and field in any error.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from llm_assets.config_checks import replace_fields, section_problems
from llm_assets.settings import (
    RUNTIME_FIELDS,
    CurationConfig,
    EvalSize,
    HeuristicThresholds,
    ModelSize,
    Profile,
    Runtime,
    SFTSize,
    SyntheticSize,
    TokenizerSize,
    TrainSize,
)

# the sections are re-exported: every library reads its section from here
__all__ = ["RUNTIME_FIELDS", "CurationConfig", "EvalSize", "HeuristicThresholds", "ModelSize", "Profile", "Runtime",
           "SFTSize", "SyntheticSize", "TokenizerSize", "TrainSize", "apply_overrides", "curation_for", "data_dir",
           "get_profile", "validate_profile"]

PROFILE_ENV = "LLM_ASSETS_PROFILE"
CONFIG_ENV = "LLM_ASSETS_CONFIG"
DATA_DIR_ENV = "LLM_ASSETS_DATA_DIR"


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
        # each replaced field is checked here, once (the built-in values are checked by the tests)
        profile = apply_overrides(profile, overrides, config)
    return profile


def data_dir() -> str:
    """The lake root: `$LLM_ASSETS_DATA_DIR`, default `./data`."""
    return os.environ.get(DATA_DIR_ENV) or os.path.abspath("data")


