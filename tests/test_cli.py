"""The command line: synth-crawl, curate, generate, export-hf, chat and evaluate, run as a user would, and
the one-line errors every verb gives instead of a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import realweb
from conftest import make_dagster_home

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


# ---------------------------------------------------------------------------------------------- errors

def cli_fails(*args: str, env: dict | None = None) -> str:
    """Run a command that must fail the way a user should see it: status 1, one `error:` line, no traceback."""
    proc = subprocess.run([sys.executable, "-m", "llm_assets", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600, env={**os.environ, **(env or {})})
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "Stack Trace" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1, proc.stderr[-3000:]
    return errors[0]


@pytest.fixture(scope="module")
def short_context_checkpoint(tmp_path_factory) -> Path:
    """An untrained model whose context (32 tokens) is shorter than the default reply length (128)."""
    import torch

    from llm_assets.modeling.checkpoint import save_checkpoint_folder
    from llm_assets.modeling.model import DecoderLM, ModelConfig
    from llm_assets.tokens.tokenizer import load_tokenizer, train_tokenizer

    folder = tmp_path_factory.mktemp("short")
    train_tokenizer(["the quick brown fox jumps over the lazy dog"] * 4, 300, folder / "tok.json")
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=load_tokenizer(folder / "tok.json").get_vocab_size(), n_layer=1, n_head=2, n_kv_head=1,
                         d_model=16, d_ff=32, context=32)
    return save_checkpoint_folder(DecoderLM(config), config, folder / "tok.json", folder / "model")


def test_chat_fits_the_default_reply_into_a_short_context(short_context_checkpoint):
    proc = cli("chat", str(short_context_checkpoint), "--prompt", "the fox", "--temperature", "0")
    assert "note:" not in proc.stderr and "Traceback" not in proc.stderr
    asked = cli("chat", str(short_context_checkpoint), "--prompt", "the fox", "--max-new-tokens", "500")
    assert "note: --max-new-tokens 500 does not fit: the model's context is 32 tokens" in asked.stderr
    gen = cli("generate", str(short_context_checkpoint), "--prompt", "the fox", "--temperature", "0")
    assert gen.stdout.startswith("the fox") and "note:" not in gen.stderr
    gen = cli("generate", str(short_context_checkpoint), "--prompt", "the fox", "--max-new-tokens", "100")
    assert "note: --max-new-tokens 100 does not fit" in gen.stderr


def test_checkpoint_errors_name_the_path(tmp_path, short_context_checkpoint):
    missing = tmp_path / "no_such_checkpoint"
    line = cli_fails("chat", str(missing), "--prompt", "hi")
    assert str(missing) in line and "does not exist" in line and "assistant_checkpoint" in line

    broken = tmp_path / "broken"
    shutil.copytree(short_context_checkpoint, broken)
    (broken / "config.json").write_text("{not json")
    line = cli_fails("generate", str(broken), "--prompt", "hi")
    assert str(broken / "config.json") in line and "not valid JSON" in line

    damaged = tmp_path / "damaged"
    shutil.copytree(short_context_checkpoint, damaged)
    (damaged / "model.safetensors").write_bytes(b"\x00" * 10)
    line = cli_fails("chat", str(damaged), "--prompt", "hi")
    assert str(damaged / "model.safetensors") in line

    unfinished = tmp_path / "unfinished"
    shutil.copytree(short_context_checkpoint, unfinished)
    (unfinished / "model.safetensors").unlink()
    line = cli_fails("export-hf", str(unfinished), str(tmp_path / "hf"))
    assert str(unfinished / "model.safetensors") in line


def test_a_config_larger_than_its_weights_is_refused_before_allocating(tmp_path, short_context_checkpoint):
    crafted = tmp_path / "crafted"
    shutil.copytree(short_context_checkpoint, crafted)
    config = json.loads((crafted / "config.json").read_text())
    small = [config["model"]["vocab_size"], config["model"]["d_model"]]
    # 400000 x 4096 fp32 is 6.5 GB: a loader that built the model first would take that before failing
    config["model"].update(vocab_size=400_000, d_model=4096, d_ff=8192)
    (crafted / "config.json").write_text(json.dumps(config))
    line = cli_fails("generate", str(crafted), "--prompt", "hi")
    assert (f"{crafted}: tensor embed_tokens.weight is [400000, 4096] in config.json but {small} in "
            "model.safetensors") in line
    config["model"].update(json.loads((short_context_checkpoint / "config.json").read_text())["model"], n_layer=4000)
    (crafted / "config.json").write_text(json.dumps(config))
    line = cli_fails("chat", str(crafted), "--prompt", "hi")
    assert f"{crafted}: config.json says n_layer 4000 but model.safetensors holds 1 layers" in line


def test_a_tokenizer_larger_than_the_embeddings_is_refused_at_load(tmp_path, short_context_checkpoint):
    from llm_assets.tokens.tokenizer import train_tokenizer

    wide = tmp_path / "wide"
    shutil.copytree(short_context_checkpoint, wide)
    train_tokenizer(["the quick brown fox jumps over the lazy dog, pack my box with five dozen liquor jugs"] * 4,
                    400, wide / "tokenizer.json")
    line = cli_fails("generate", str(wide), "--prompt", "the quick brown fox")
    assert str(wide / "tokenizer.json") in line and "but the model's embeddings have" in line


def test_evaluate_output_leaves_no_temporary_file(tmp_path, short_context_checkpoint):
    from llm_assets.evaluation.cli import write_scores

    tasks = tmp_path / "tiny.jsonl"
    tasks.write_text('{"query": "the quick brown", "choices": ["fox", "dog"], "gold": 0}\n')
    out = tmp_path / "out"
    cli("evaluate", str(short_context_checkpoint), "--tasks", str(tasks), "--output", str(out / "scores.json"))
    assert json.loads((out / "scores.json").read_text())["tiny"]["n"] == 1
    line = cli_fails("evaluate", str(short_context_checkpoint), "--tasks", str(tasks), "--output", str(out))
    assert f"--output {out} is a folder" in line
    with pytest.raises(IsADirectoryError):  # the rename fails: the temporary file goes with it
        write_scores({"tiny": {"acc": 1.0, "n": 1}}, out)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["scores.json", "tiny.jsonl"]


def test_task_file_errors_name_the_path(tmp_path, short_context_checkpoint):
    missing = tmp_path / "missing.jsonl"
    line = cli_fails("evaluate", str(short_context_checkpoint), "--tasks", str(missing))
    assert str(missing) in line and "not found" in line
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "choices": ["a", "b"], "gold": 0}\n{"query": "q", "choices": ["a"]\n')
    line = cli_fails("evaluate", str(short_context_checkpoint), "--tasks", str(bad))
    assert f"{bad}:2" in line


def test_crawl_and_output_errors_name_the_path(tmp_path):
    missing = tmp_path / "crawl"
    line = cli_fails("curate", "--warc", str(missing / "*.warc.gz"), "--out", str(tmp_path / "out"))
    assert str(missing) in line
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    line = cli_fails("synth-crawl", "--out", str(a_file), "--profile", "smoke")
    assert str(a_file) in line
    home = make_dagster_home(tmp_path / "home")
    line = cli_fails("build", "--profile", "smoke", "--crawl", str(missing),
                     env={"DAGSTER_HOME": str(home), "LLM_ASSETS_DATA_DIR": str(tmp_path / "data")})
    assert str(missing) in line


def test_debug_shows_the_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "llm_assets", "chat", "--debug", str(tmp_path / "nothing"),
                           "--prompt", "hi"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


class GatedWarcServer(realweb.FileServer):
    """Serves one WARC file on 127.0.0.1 only once `release()` is called: a run reading it is held inside
    its work (holding its lock) for as long as a test needs, without timing guesses."""

    def __init__(self, data: bytes):
        import threading

        super().__init__(data, "/held.warc.gz")
        self.gate = threading.Event()
        self.url = self.base + self.path

    def answer(self, request):
        self.gate.wait()
        return 200, {}

    def release(self) -> None:
        self.gate.set()

    def __exit__(self, *exc):
        self.release()
        super().__exit__(*exc)


def wait_for_lock(folder: Path, proc: subprocess.Popen) -> None:
    """Wait until `proc` holds the lock of `folder` (its pid is in the lock file)."""
    import time

    from llm_assets.lake import LOCK_FILE

    lock = folder / LOCK_FILE
    for _ in range(1200):
        if lock.exists() and f"pid {proc.pid} " in lock.read_text():
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError(f"{proc.args} did not take the lock of {folder}")


def popen_cli(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "llm_assets", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def test_a_second_curate_into_the_same_output_is_refused(tmp_path, smoke_crawl):
    out = tmp_path / "curated"
    with GatedWarcServer((smoke_crawl / "crawl-00000.warc.gz").read_bytes()) as server:
        first = popen_cli("curate", "--warc", server.url, "--out", str(out), "--profile", "smoke")
        try:
            wait_for_lock(out, first)
            line = cli_fails("curate", "--warc", str(smoke_crawl / "crawl-00001.warc.gz"), "--out", str(out),
                             "--profile", "smoke")
            assert f"{out} is in use by pid {first.pid} (curate" in line, line
        finally:
            server.release()
            stdout, stderr = first.communicate(timeout=900)
    assert first.returncode == 0, stderr[-3000:]
    summary = json.loads(stdout[stdout.index("{"):])
    # the first run's output is whole, and the refused run wrote nothing
    for stage in ("raw_crawl", "filtered_documents", "training_mixture"):
        assert [p.name for p in (out / stage / "kept").glob("*.parquet")] == ["held.parquet"], stage
    (mixture,) = duckdb.sql(f"select count(*) from read_parquet('{out}/training_mixture/kept/*.parquet')").fetchall()
    assert mixture[0] == summary["training_mixture"]["kept"] > 0
    # once the first run is over the folder is free again; --reference feeds the quality model's positives
    reference = tmp_path / "reference.txt"
    reference.write_text("\n\n".join(f"Reference article {i} about the history of a river town and its "
                                      "bridges, written in plain careful prose." for i in range(12)))
    again = cli("curate", "--warc", str(smoke_crawl / "crawl-00001.warc.gz"), "--out", str(out), "--profile",
                "smoke", "--reference", str(reference)).stdout
    summary = json.loads(again[again.index("{"):])
    assert summary["inputs"]["reference_texts"] == 12
    assert summary["quality_classifier"]["reference_files"] == [str(reference)]


def test_a_second_build_on_the_same_lake_and_profile_is_refused(tmp_path, smoke_crawl):
    data = tmp_path / "data"
    env = {"DAGSTER_HOME": str(make_dagster_home(tmp_path / "home")), "LLM_ASSETS_DATA_DIR": str(data)}
    with GatedWarcServer((smoke_crawl / "crawl-00000.warc.gz").read_bytes()) as server:
        first = popen_cli("build", "--profile", "smoke", "--crawl", server.url, "--select", "key:raw_crawl",
                          env=env)
        try:
            wait_for_lock(data / "smoke", first)
            line = cli_fails("build", "--profile", "smoke", "--crawl", str(smoke_crawl), "--select",
                             "key:raw_crawl", env={**env, "DAGSTER_HOME": str(make_dagster_home(tmp_path / "h2"))})
            assert f"{data / 'smoke'} is in use by pid {first.pid} (build" in line, line
        finally:
            server.release()
            stdout, stderr = first.communicate(timeout=900)
    assert first.returncode == 0, stdout[-3000:] + stderr[-3000:]
    assert [p.name for p in (data / "smoke" / "raw_crawl" / "kept").glob("*.parquet")] == ["held.parquet"]


def test_curate_checks_benchmark_and_reference_files_before_curating(tmp_path, smoke_crawl):
    out = tmp_path / "curated"
    warc = str(smoke_crawl / "crawl-00000.warc.gz")
    missing = tmp_path / "missing.jsonl"
    line = cli_fails("curate", "--warc", warc, "--out", str(out), "--benchmark", str(missing))
    assert str(missing) in line
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe" * 20)
    line = cli_fails("curate", "--warc", warc, "--out", str(out), "--benchmark", str(binary))
    assert str(binary) in line
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"query": "q", "choices": ["a", "b"], "gold": 0}\n{"query": \n')
    line = cli_fails("curate", "--warc", warc, "--out", str(out), "--benchmark", str(broken))
    assert str(broken) in line
    no_reference = tmp_path / "nothing.txt"
    line = cli_fails("curate", "--warc", warc, "--out", str(out), "--reference", str(no_reference))
    assert str(no_reference) in line
    # checked before any stage ran: nothing was written
    assert not [p for p in out.rglob("*.parquet")]


def test_curate_takes_the_synthetic_settings_only_for_the_synthetic_crawl_folder(tmp_path):
    from llm_assets.__main__ import is_synthetic_crawl_files
    from llm_assets.synthetic import MARKER_FILE

    crawl = tmp_path / "crawl"
    crawl.mkdir()
    (crawl / MARKER_FILE).write_text("{}")
    files = [str(crawl / "crawl-00000.warc.gz"), str(crawl / "crawl-00001.warc.gz")]
    assert is_synthetic_crawl_files(files) and is_synthetic_crawl_files([str(crawl)])
    assert is_synthetic_crawl_files([f"file://{files[0]}"])
    assert not is_synthetic_crawl_files([*files, str(tmp_path / "elsewhere.warc.gz")])
    assert not is_synthetic_crawl_files([str(tmp_path / "crawl-00000.warc.gz")])
    assert not is_synthetic_crawl_files(["https://example.org/crawl/crawl-00000.warc.gz"])
