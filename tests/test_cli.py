"""The command line: synth-crawl, curate, generate, export-hf and evaluate, run as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "llm_assets", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_synth_crawl_is_deterministic(tmp_path):
    cli("synth-crawl", "--seed", "5", "--out", str(tmp_path / "a"), "--profile", "smoke")
    cli("synth-crawl", "--seed", "5", "--out", str(tmp_path / "b"), "--profile", "smoke")
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert {"labels.parquet", "sft.jsonl", "benchmark.jsonl", "synthetic.json"} <= set(files)
    for name in files:
        if name.endswith(".warc.gz"):
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_curate_answers_why_a_url_is_missing(tmp_path, smoke_crawl):
    out = tmp_path / "curated"
    cli("curate", "--warc", str(smoke_crawl / "crawl-*.warc.gz"), "--out", str(out), "--profile", "smoke",
        "--benchmark", str(smoke_crawl / "benchmark.jsonl"))
    mixture = duckdb.sql(f"select text, split, warc_record_id from read_parquet('{out}/training_mixture/kept/*.parquet')")
    assert mixture.fetchall()
    # one query over every stage's removed rows: why is a forum page that showed PII-heavy text... gone?
    why = duckdb.sql(f"""
        select r.url, r.stage, r.reason
        from read_parquet('{out}/*/removed/*.parquet', union_by_name = true) r
        join read_parquet('{smoke_crawl}/labels.parquet') l using (warc_record_id)
        where l.nsfw""").fetchall()
    assert why and all(stage in ("extracted_documents", "filtered_documents") for _, stage, _ in why)


def test_generate_export_and_evaluate(tmp_path, smoke_build, smoke_crawl):
    assert smoke_build.proc.returncode == 0, smoke_build.proc.stdout[-2000:]
    checkpoint = smoke_build.lake / "base_checkpoint"
    gen = cli("generate", str(checkpoint), "--prompt", "The city of", "--temperature", "0",
              "--max-new-tokens", "8")
    assert gen.stdout.startswith("The city of") and len(gen.stdout.strip()) > len("The city of")

    exported = tmp_path / "hf"
    cli("export-hf", str(checkpoint), str(exported))
    assert (exported / "model.safetensors").exists() and (exported / "tokenizer_config.json").exists()

    results = tmp_path / "scores.json"
    tasks = smoke_crawl / "benchmark.jsonl"
    ours = cli("evaluate", str(checkpoint), "--tasks", str(tasks), "--output", str(results), "--max-items", "40")
    scores = json.loads(results.read_text())
    assert set(scores["benchmark"]) == {"acc", "acc_norm", "n"} and scores["benchmark"]["n"] == 40
    assert "benchmark" in ours.stdout
    hf_results = tmp_path / "hf_scores.json"
    cli("evaluate", str(exported), "--tasks", str(tasks), "--output", str(hf_results), "--max-items", "40")
    assert json.loads(hf_results.read_text()) == scores  # the exported folder scores the same
