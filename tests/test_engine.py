"""The engine setting: `local` and `ray` run the same tasks and make the same decisions.

The smoke crawl is curated twice, in this process and on a local Ray cluster of 2 worker processes; every
stage must keep and remove the same documents, for the same reasons, and the tokenizer and token shards
made from the two mixtures must be byte-identical.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import polars as pl
import pytest

from llm_assets.curation.dedup import shuffle
from llm_assets.curation.pipeline import STAGES, curate
from llm_assets.engine import ENGINE_ENV, LocalEngine, engine_name, open_engine
from llm_assets.lake import part_files, read_part, write_part
from llm_assets.profiles import curation_for, get_profile
from llm_assets.tokens.shards import write_shards
from llm_assets.tokens.tokenizer import mixture_texts, train_tokenizer

ray = pytest.importorskip("ray")

from test_ray_loopback import assert_loopback_only, ray_listeners  # noqa: E402


def test_engine_name_from_argument_then_environment(monkeypatch):
    monkeypatch.delenv(ENGINE_ENV, raising=False)
    assert engine_name() == "local" and engine_name("Ray") == "ray"
    monkeypatch.setenv(ENGINE_ENV, "ray")
    assert engine_name() == "ray" and engine_name("local") == "local"
    monkeypatch.setenv(ENGINE_ENV, "spark")
    with pytest.raises(ValueError, match=r"engine 'spark' is not one of local, ray \(set by --engine or "
                                         r"\$LLM_ASSETS_ENGINE\)"):
        engine_name()
    with open_engine("local") as engine:
        assert isinstance(engine, LocalEngine)


def _curate(crawl, lake, engine: str) -> dict:
    return curate(sorted(str(p) for p in crawl.glob("crawl-*.warc.gz")), lake, "smoke", [crawl / "benchmark.jsonl"],
                  synthetic=True, engine=engine)


@pytest.fixture(scope="module")
def both_engines(smoke_crawl, tmp_path_factory):
    lakes = {}
    for engine in ("local", "ray"):
        lakes[engine] = tmp_path_factory.mktemp(f"lake_{engine}")
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("LLM_ASSETS_RAY_WORKERS", "2")  # a local cluster of at least 2 worker processes
            if engine == "ray":  # one hash bucket per part, so the shuffles spread keys over several tasks
                patch.setattr(shuffle, "PARTS_PER_BUCKET", 1)
                patch.setattr(shuffle, "PARTS_PER_GROUP", 2)
            summary = _curate(smoke_crawl, lakes[engine], engine)
        assert summary["engine"] == engine
    return lakes


def _ids(lake, stage: str, side: str) -> pl.DataFrame:
    frames = [pl.read_parquet(f).with_columns(pl.lit(f.stem).alias("_part")) for f in part_files(lake, stage, side)]
    frames = [f for f in frames if f.height]
    if not frames:
        return pl.DataFrame()
    rows = pl.concat(frames, how="diagonal_relaxed")
    columns = ["_part", "warc_record_id"] + (["reason"] if side == "removed" else [])
    return rows.select(columns).sort(columns)


def test_ray_keeps_and_removes_the_same_documents_at_every_stage(both_engines):
    local, on_ray = both_engines["local"], both_engines["ray"]
    for stage in STAGES:
        if stage == "quality_classifier":
            continue
        for side in ("kept", "removed"):
            assert _ids(local, stage, side).equals(_ids(on_ray, stage, side)), (stage, side)
        assert _ids(local, stage, "kept").height > 0, stage
        # whole rows too, in the same order: text after the boilerplate cut, scores, splits, copies
        for a, b in zip(part_files(local, stage), part_files(on_ray, stage), strict=True):
            assert pl.read_parquet(a).equals(pl.read_parquet(b)), (stage, a.name)
    removed = _ids(local, "deduplicated_documents", "removed")
    assert {"exact_duplicate", "near_duplicate"} <= set(removed["reason"])


def test_token_shards_from_both_engines_are_byte_identical(both_engines, tmp_path):
    """Each engine's mixture gives the same tokenizer; the ray engine encodes the parts as tasks and merges
    them, the local one encodes in this process: the shards, sidecars and manifest are the same bytes."""
    digests = {}
    size = get_profile("smoke").tokenizer
    for engine, lake in both_engines.items():
        files = part_files(lake, "training_mixture")
        tokenizer = tmp_path / engine / "tokenizer.json"
        tokenizer.parent.mkdir()
        train_tokenizer(mixture_texts(files, "train"), size.vocab_size, tokenizer)
        with open_engine(engine, workers=2) as running:
            # small batches: the merge of encoded parts runs over many record batches
            write_shards(files, tokenizer, tmp_path / engine / "shards", size.shard_tokens, 16, engine=running,
                         scratch=tmp_path / f"scratch-{engine}")
        digests[engine] = {f.relative_to(tmp_path / engine).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
                           for f in sorted((tmp_path / engine).rglob("*")) if f.is_file()}
    assert sum(name.endswith(".bin") for name in digests["local"]) >= 2
    assert digests["local"] == digests["ray"]


def test_a_failing_task_raises_its_own_error_on_ray(tmp_path):
    """An error inside a Ray task reaches the caller as the task's own exception, naming the part."""
    load = functools.partial(read_part, tmp_path, "filtered_documents")
    pl.DataFrame({"warc_record_id": ["<urn:uuid:1>"], "text": ["a page"]}).write_parquet(tmp_path / "x.parquet")
    write_part(tmp_path, "filtered_documents", "broken", pl.read_parquet(tmp_path / "x.parquet"), pl.DataFrame())
    cfg = curation_for(get_profile("smoke"), True)
    with open_engine("ray", workers=2) as engine, pytest.raises(ValueError, match="part 'broken' lack columns"):
        shuffle.deduplicate_parts(["broken"], load, functools.partial(write_part, tmp_path, "out"), cfg, engine,
                                tmp_path / "scratch")


def _ray_cli() -> str:
    import shutil
    import sys

    return str(Path(sys.executable).with_name("ray")) if Path(sys.executable).with_name("ray").exists() \
        else shutil.which("ray")


def test_joins_a_cluster_started_with_ray_start(smoke_crawl, tmp_path, monkeypatch):
    """`LLM_ASSETS_RAY_ADDRESS` names a cluster started by `ray start` (as on any hosts): the tasks run on
    it, the step does not stop it, and the decisions are those of the local engine."""
    import contextlib
    import shutil
    import signal
    import socket
    import subprocess
    import tempfile
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"127.0.0.1:{port}"
    log = tmp_path / "ray-start.log"
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    # --block keeps `ray start` as the parent of the cluster's processes, in a session of their own, so the
    # test stops this cluster and nothing else (`ray stop` would stop every Ray process of the machine).
    # No token authentication: this test is about joining, not about Ray's credentials (a cluster that uses
    # them needs RAY_AUTH_MODE=token and the token on the driver, as Ray documents).
    # Bound to 127.0.0.1 like a cluster the project starts for itself: Ray keeps a loopback node address only
    # with its single-machine switch off, on the head and on every client (the driver read it at import).
    start = [_ray_cli(), "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1",
             "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    monkeypatch.setattr("ray._private.ray_constants.ENABLE_RAY_CLUSTER", False)
    with open(log, "w") as out:
        head = subprocess.Popen(start, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def running() -> bool:
        return subprocess.run([_ray_cli(), "status", f"--address={address}"], capture_output=True, timeout=60,
                              env=env).returncode == 0

    try:
        deadline = time.monotonic() + 180
        while not running():
            assert head.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(2)
        monkeypatch.setenv("LLM_ASSETS_RAY_ADDRESS", address)
        lakes = {}
        for engine in ("local", "ray"):
            lakes[engine] = tmp_path / engine
            summary = _curate(smoke_crawl, lakes[engine], engine)
            assert summary["engine"] == engine
        for stage in STAGES:
            for side in ("kept", "removed"):
                assert _ids(lakes["local"], stage, side).equals(_ids(lakes["ray"], stage, side)), (stage, side)
        assert running(), "the step must leave a cluster it joined running"
        assert_loopback_only(ray_listeners(head.pid))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(timeout=30)
        shutil.rmtree(temp, ignore_errors=True)


def test_the_dagster_assets_run_their_tasks_on_the_engine_resource(both_engines, smoke_crawl, tmp_path):
    """The global assets with `EngineResource(name="ray")` decide as `curate` did on the local engine."""
    import shutil

    from dagster import DagsterInstance, materialize

    from llm_assets.defs.curation import GLOBAL
    from llm_assets.defs.resources import CrawlSource, EngineResource, LakeResource
    from llm_assets.defs.tokens import token_shards, tokenizer

    local = both_engines["local"]
    shutil.copytree(local / "filtered_documents", tmp_path / "smoke" / "filtered_documents")
    resources = {"lake": LakeResource(root=str(tmp_path), profile="smoke"),
                 "crawl": CrawlSource(sources=[str(smoke_crawl)], profile="smoke", data_root=str(tmp_path)),
                 "engine": EngineResource(name="ray", workers=2)}
    result = materialize([*GLOBAL, tokenizer, token_shards], resources=resources,
                         instance=DagsterInstance.ephemeral())
    assert result.success
    engines = {m.asset_key.to_user_string(): m.metadata["engine"].value
               for m in result.asset_materializations_for_node("deduplicated_documents")}
    assert engines == {"deduplicated_documents": "ray"}
    for stage in ("deduplicated_documents", "quality_documents", "training_mixture"):
        for side in ("kept", "removed"):
            assert _ids(local, stage, side).equals(_ids(tmp_path / "smoke", stage, side)), (stage, side)
    assert (tmp_path / "smoke" / "token_shards" / "manifest.json").is_file()
    assert not list((tmp_path / "smoke").glob(".*-*")), "scratch folders are removed after each step"


def test_a_real_crawl_is_curated_alike_on_both_engines(real_crawl, tmp_path):
    """Crawls recorded by real clients (warcio, and wget where installed): the same decisions on both engines."""
    warcs = [str(path) for name, path in real_crawl.items() if name != "no_html"]
    for engine in ("local", "ray"):
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("LLM_ASSETS_RAY_WORKERS", "2")
            patch.setattr(shuffle, "PARTS_PER_BUCKET", 1)
            curate(warcs, tmp_path / engine, "smoke", engine=engine)
    for stage in STAGES:
        if stage == "quality_classifier":
            continue
        for side in ("kept", "removed"):
            assert _ids(tmp_path / "local", stage, side).equals(_ids(tmp_path / "ray", stage, side)), (stage, side)
    assert _ids(tmp_path / "local", "training_mixture", "kept").height > 0

