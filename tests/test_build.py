"""`python -m llm_assets build --profile smoke` materializes the whole graph in a real Dagster instance."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import assert_every_check_ran_and_blocking_passed, run_build
from dagster import AssetKey, DagsterInstance

from llm_assets.definitions import defs


def test_build_smoke_materializes_every_asset(smoke_build, monkeypatch):
    proc = smoke_build.proc
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "build succeeded" in proc.stdout
    graph = defs.resolve_asset_graph()
    keys = sorted(graph.get_all_asset_keys())
    summary = proc.stdout[proc.stdout.index("asset "):]
    for key in keys:
        assert f"\n{key.to_user_string()} " in summary, f"no summary line for {key}"

    monkeypatch.setenv("DAGSTER_HOME", str(smoke_build.home))  # dagster.yaml keeps storage under it
    instance = DagsterInstance.get()
    try:
        for key in keys:
            record = instance.get_latest_materialization_event(key)
            assert record is not None, f"{key} was not materialized"
            meta = record.asset_materialization.metadata
            assert "path" in meta, f"{key} materialization has no path"
            assert os.path.exists(str(meta["path"].value)), meta["path"]
        assert sorted(instance.get_dynamic_partitions("warc_files")) == [
            "crawl-00000", "crawl-00001", "crawl-00002"]
        assert_every_check_ran_and_blocking_passed(instance, graph)
        raw = instance.get_latest_materialization_event(AssetKey("raw_crawl")).asset_materialization
        assert raw.metadata["dagster/row_count"].value > 0
        runs = instance.get_runs()
        assert len(runs) == 4  # one per crawl partition, then the global stages
        assert all(r.tags.get("llm_assets/launched_by") == "cli-build" for r in runs)
    finally:
        instance.dispose()


def test_build_rejects_unknown_selection(dagster_home, tmp_path):
    proc = run_build(dagster_home, tmp_path / "data", "--select", "key:no_such_asset")
    assert proc.returncode != 0
    assert "no_such_asset" in (proc.stdout + proc.stderr)


def test_build_select_and_crawl_flags(dagster_home, tmp_path, smoke_crawl):
    proc = run_build(dagster_home, tmp_path / "data", "--crawl", str(smoke_crawl), "--select",
                     "key:raw_crawl", "--workers", "1")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "raw_crawl" in proc.stdout and "extracted_documents" not in proc.stdout.split("asset ")[-1]


# ------------------------------------------------------------------------- a tiny or empty real mixture

# real web text is longer and messier than the synthetic pages: scripts, symbols, control characters
MESSY_DOCUMENTS = [
    "Ångström-scale détente: naïve café owners in Zürich serve crème brûlée. " * 6,
    "東京の天気は晴れです。明日は雨が降るでしょう。 北京欢迎你！ 서울의 봄은 따뜻합니다. " * 5,
    "مرحبا بالعالم — שלום עולם — Привет, мир! Γειά σου κόσμε. " * 6,
    "Emoji 👩‍👩‍👧‍👦 and flags 🇩🇪🇯🇵, combining e\u0301 and zero\u200bwidth, tab\there, CRLF\r\nline. " * 5,
    "minified:" + "abcdefghij" * 80 + " end\x00nul \ufeffbom \U0001F600 <|endoftext|> literal",
    "The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs. " * 8,
]


def write_mixture(lake: Path, texts: list[str], split: str = "train") -> None:
    """A training_mixture part in the columns the curation writes (no validation rows: a tiny crawl)."""
    import polars as pl

    from llm_assets.lake import kept_path, write_parquet

    frame = pl.DataFrame({
        "text": texts, "split": [split] * len(texts),
        "warc_record_id": [f"<urn:uuid:{i:08d}>" for i in range(len(texts))],
        "url": [f"https://real.example/{i}" for i in range(len(texts))],
        "host": ["real.example"] * len(texts), "site": ["example"] * len(texts), "copy": [0] * len(texts),
    }, schema_overrides={"copy": pl.Int64})
    write_parquet(frame, kept_path(lake, "training_mixture", "real-00000"))


def materialize_downstream(root: Path, assets: list, crawl_file: Path):
    from dagster import DagsterInstance, materialize

    from llm_assets.defs.resources import CrawlSource, EngineResource, LakeResource
    from llm_assets.defs.training import TrainerResource, TrainingLauncher

    resources = {"lake": LakeResource(root=str(root), profile="smoke"),
                 "crawl": CrawlSource(sources=[str(crawl_file)], profile="smoke", data_root=str(root)),
                 "engine": EngineResource(),
                 "trainer": TrainerResource(accelerator="cpu"), "launcher": TrainingLauncher()}
    return materialize(assets, resources=resources, instance=DagsterInstance.ephemeral(), raise_on_error=False)


def failures(result) -> dict[str, str]:
    from llm_assets.cli.summary import user_error

    return {f.step_key: user_error(f.step_failure_data.error) for f in result.get_step_failure_events()}


@pytest.fixture
def crawl_file(tmp_path) -> Path:
    path = tmp_path / "real-00000.warc.gz"
    path.write_bytes(b"")  # only its name is used: the stages under test start at training_mixture
    return path


def test_empty_mixture_fails_in_one_sentence(tmp_path, crawl_file):
    from llm_assets.defs.tokens import tokenizer

    write_mixture(tmp_path / "smoke", [])
    result = materialize_downstream(tmp_path, [tokenizer], crawl_file)
    assert failures(result) == {"tokenizer": "training_mixture has 0 train documents (0 validation): "
                                             "nothing to train the tokenizer on"}


def test_too_few_tokens_fail_in_one_sentence(tmp_path, crawl_file):
    from llm_assets.defs.tokens import token_shards, tokenizer
    from llm_assets.defs.training import base_checkpoint

    write_mixture(tmp_path / "smoke", ["a short page", "another short page"])
    result = materialize_downstream(tmp_path, [tokenizer, token_shards, base_checkpoint], crawl_file)
    (message,) = failures(result).values()
    assert message.startswith("token_shards has ") and "fewer than the model's context + 1 = 129" in message


def test_tiny_messy_mixture_runs_to_the_model_card(tmp_path, crawl_file):
    """No validation split, no SFT file, no benchmark file: each stage materializes and says what it skipped."""
    from llm_assets.defs.evaluation import benchmark_scores, benchmark_suite, model_card
    from llm_assets.defs.tokens import token_shards, tokenizer
    from llm_assets.defs.training import assistant_checkpoint, base_checkpoint, sft_examples

    lake = tmp_path / "smoke"
    write_mixture(lake, MESSY_DOCUMENTS)
    # a stale assistant from an earlier build must not be scored as this one's
    (lake / "assistant_checkpoint").mkdir(parents=True)
    (lake / "assistant_checkpoint" / "model.safetensors").write_bytes(b"stale")
    result = materialize_downstream(tmp_path, [tokenizer, token_shards, base_checkpoint, sft_examples,
                                               assistant_checkpoint, benchmark_suite, benchmark_scores, model_card],
                                    crawl_file)
    assert result.success, failures(result)
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["round_trip"].passed and checks["round_trip"].metadata["split"].value == "train"
    assert not checks["splits_nonempty"].passed and checks["splits_nonempty"].severity.value == "WARN"
    learned = checks["loss_finite_and_learned"]
    assert learned.passed and learned.metadata["judged_on"].value.startswith("training loss")
    assert "LLM_ASSETS_SFT" in checks["ends_turn"].metadata["skipped"].value
    assert "skipped" in checks["well_formed"].metadata

    meta = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert "LLM_ASSETS_SFT" in meta["assistant_checkpoint"]["skipped"].value
    assert not (lake / "assistant_checkpoint" / "model.safetensors").exists()
    assert "LLM_ASSETS_BENCHMARKS" in meta["benchmark_suite"]["skipped"].value
    assert meta["benchmark_scores"]["models"].value == "base"  # the models scored, as text
    card = (lake / "model_card" / "MODEL_CARD.md").read_text()
    assert "## Notes" in card and "assistant_checkpoint: skipped" in card and "validation split is empty" in card

    # the shards hold every document once, and the messy text decodes back exactly
    from llm_assets.tokens.shards import load_manifest, read_tokens
    from llm_assets.tokens.tokenizer import load_tokenizer

    manifest = load_manifest(lake / "token_shards")
    assert manifest["documents"] == {"train": len(MESSY_DOCUMENTS), "validation": 0}
    tokens = [int(t) for e in manifest["splits"]["train"] for t in read_tokens(lake / "token_shards" / e["file"])]
    pieces = load_tokenizer(lake / "tokenizer" / "tokenizer.json").decode(tokens, skip_special_tokens=False)
    assert all(doc in pieces for doc in MESSY_DOCUMENTS)
