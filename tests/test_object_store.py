"""The lake on object storage: a real S3-compatible server (moto's server mode, over HTTP on 127.0.0.1) holds
the lake of a whole smoke build, and the build decides exactly as on a local folder."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

import polars as pl
import pytest
from conftest import assert_every_check_ran_and_blocking_passed, make_dagster_home, run_build

pytest.importorskip("moto.server", reason="the object-store tests need moto[server] (in .[dev])")
pytest.importorskip("s3fs")
pytest.importorskip("upath")

BUCKET = "lake"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_env(tmp_path_factory):
    """A moto S3 server in its own process, a bucket in it, and the AWS_* variables that reach it (set in
    this process too, for the in-process tests)."""
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=out, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(endpoint, timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"the S3 server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": endpoint}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        import boto3

        boto3.client("s3").create_bucket(Bucket=BUCKET)
        import fsspec

        fsspec.filesystem("s3").invalidate_cache()
        try:
            yield env
        finally:
            server.terminate()
            server.wait(timeout=30)


def _objects(prefix: str) -> list[str]:
    import fsspec

    fs = fsspec.filesystem("s3")
    fs.invalidate_cache()
    return sorted(fs.find(f"{BUCKET}/{prefix}"))


def test_parquet_parts_on_s3_are_written_whole_read_back_and_pruned(s3_env):
    from llm_assets import lake

    root = f"s3://{BUCKET}/unit"
    kept = pl.DataFrame({"warc_record_id": ["a", "b"], "url": ["http://x/1", "http://x/2"], "text": ["one", "two"]})
    removed = lake.removed_frame(kept.head(1), "stage", "why")
    lake.write_part(root, "stage", "p1", kept, removed)
    lake.write_part(root, "stage", "p2", kept.tail(1), removed.clear())
    assert lake.read_part(root, "stage", "p1").equals(kept)
    assert [f.name for f in lake.part_files(root, "stage")] == ["p1.parquet", "p2.parquet"]
    assert lake.scan_parts(lake.part_files(root, "stage")).collect().height == 3
    assert str(lake.kept_path(root, "stage", "p1")) == f"{root}/stage/kept/p1.parquet"

    # a write that fails half way leaves the object that was there, and no temporary object
    with pytest.raises(pl.exceptions.ColumnNotFoundError):
        lake.write_parquet(kept, lake.kept_path(root, "stage", "p1"), row_group_by="no_such_column")
    assert lake.read_part(root, "stage", "p1").equals(kept)
    assert not [o for o in _objects("unit") if o.endswith(".tmp")]

    assert [f.name for f in lake.prune_parts(root, "stage", ["p1"])] == ["p2.parquet", "p2.parquet"]
    assert _objects("unit/stage") == [f"{BUCKET}/unit/stage/kept/p1.parquet", f"{BUCKET}/unit/stage/removed/p1.parquet"]
    assert lake.part_files(root, "nothing_here") == []


def test_a_working_folder_is_pulled_then_pushed_with_changes_and_removals(s3_env, tmp_path, monkeypatch):
    from llm_assets.defs.resources import LakeResource

    monkeypatch.setenv("LLM_ASSETS_CACHE_DIR", str(tmp_path / "cache_a"))
    resource = LakeResource(root=f"s3://{BUCKET}/sync", profile="smoke")
    with resource.working("model") as folder:
        (folder / "weights.bin").write_bytes(b"\0" * 1000)
        (folder / "sub").mkdir()
        (folder / "sub" / "note.txt").write_text("first")
        (folder / "stale.txt").write_text("to be removed")
    assert _objects("sync/smoke/model") == [f"{BUCKET}/sync/smoke/model/{n}"
                                           for n in ("stale.txt", "sub/note.txt", "weights.bin")]
    assert resource.url("model") == f"s3://{BUCKET}/sync/smoke/model"

    # a second host (another cache) sees the files, changes one and removes one
    monkeypatch.setenv("LLM_ASSETS_CACHE_DIR", str(tmp_path / "cache_b"))
    with resource.working("model") as folder:
        assert (folder / "sub" / "note.txt").read_text() == "first"
        (folder / "sub" / "note.txt").write_text("second")
        (folder / "stale.txt").unlink()
    assert _objects("sync/smoke/model") == [f"{BUCKET}/sync/smoke/model/{n}" for n in ("sub/note.txt", "weights.bin")]

    # the first host's mirror catches up: the changed file again, the removed one gone
    monkeypatch.setenv("LLM_ASSETS_CACHE_DIR", str(tmp_path / "cache_a"))
    folder = resource.fetch("model")
    assert (folder / "sub" / "note.txt").read_text() == "second"
    assert not (folder / "stale.txt").exists()
    assert (folder / "weights.bin").stat().st_size == 1000


def test_a_step_that_fails_still_pushes_what_it_finished(s3_env, tmp_path, monkeypatch):
    from llm_assets.defs.resources import LakeResource

    monkeypatch.setenv("LLM_ASSETS_CACHE_DIR", str(tmp_path / "cache"))
    resource = LakeResource(root=f"s3://{BUCKET}/failing", profile="smoke")
    with pytest.raises(RuntimeError, match="step died"), resource.working("base_checkpoint") as folder:
        (folder / "last.ckpt").write_bytes(b"step 10")
        raise RuntimeError("step died")
    assert _objects("failing/smoke/base_checkpoint") == [f"{BUCKET}/failing/smoke/base_checkpoint/last.ckpt"]


def _kept_ids(lake, stage: str) -> list[str]:
    from llm_assets.lake import part_files, scan_parts

    return sorted(scan_parts(part_files(lake, stage)).select("warc_record_id").collect()["warc_record_id"])


def test_smoke_build_with_the_lake_on_s3_decides_as_the_local_one(s3_env, smoke_build, tmp_path, monkeypatch):
    """The whole graph with LLM_ASSETS_DATA_DIR=s3://...: every check runs, every asset's `path` is its URL,
    the curation stages keep the same documents as the local smoke build and the token shards are the
    same bytes."""
    from dagster import DagsterInstance

    from llm_assets.definitions import defs
    from llm_assets.lake import lake_path
    from llm_assets.tokens.shards import MANIFEST

    assert smoke_build.proc.returncode == 0, smoke_build.proc.stdout[-3000:]
    home = make_dagster_home(tmp_path / "dagster_home")
    cache = tmp_path / "cache"
    url = f"s3://{BUCKET}/build"
    monkeypatch.setenv("LLM_ASSETS_CACHE_DIR", str(cache))
    proc = run_build(home, url, env={**s3_env, "LLM_ASSETS_CACHE_DIR": str(cache)})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "lake s3://lake/build/smoke" in proc.stdout

    remote = lake_path(url) / "smoke"
    for stage in ("raw_crawl", "extracted_documents", "filtered_documents", "deduplicated_documents",
                  "quality_documents", "training_mixture"):
        assert _kept_ids(remote, stage) == _kept_ids(smoke_build.lake, stage), stage
    # the shards' manifest holds every shard's sha256: equal manifests are byte-identical shards
    assert (remote / "token_shards" / MANIFEST).read_text() == (smoke_build.lake / "token_shards" / MANIFEST).read_text()
    objects = _objects("build/smoke")
    for name in ("base_checkpoint/model.safetensors", "assistant_checkpoint/model.safetensors",
                 "benchmark_scores/scores.parquet", "model_card/MODEL_CARD.md", "tokenizer/tokenizer.json"):
        assert f"{BUCKET}/build/smoke/{name}" in objects, name
    assert not [o for o in objects if o.endswith(".tmp")]

    # "why is this URL not in my training data?" is still one DuckDB query, over the bucket
    import duckdb
    import fsspec

    con = duckdb.connect()
    con.register_filesystem(fsspec.filesystem("s3"))
    query = "select reason, count(*) from read_parquet('{}/*/removed/*.parquet', union_by_name=true) group by 1"
    assert sorted(con.sql(query.format(f"{url}/smoke")).fetchall()) == \
        sorted(duckdb.sql(query.format(smoke_build.lake)).fetchall())

    # another host (an empty mirror) reruns the training: it resumes from the last.ckpt in the bucket
    other = tmp_path / "other_host_cache"
    rerun = run_build(home, url, "--select", "base_checkpoint", env={**s3_env, "LLM_ASSETS_CACHE_DIR": str(other)})
    assert rerun.returncode == 0, rerun.stdout[-4000:] + rerun.stderr[-4000:]
    assert "same inputs as last.ckpt: resuming it" in rerun.stdout + rerun.stderr
    assert (other / "lake" / "s3" / BUCKET / "build" / "smoke" / "base_checkpoint" / "last.ckpt").is_file()

    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = DagsterInstance.get()
    try:
        graph = defs.resolve_asset_graph()
        for key in graph.get_all_asset_keys():
            meta = instance.get_latest_materialization_event(key).asset_materialization.metadata
            assert str(meta["path"].value).startswith(f"{url}/smoke/"), (key, meta["path"])
        assert_every_check_ran_and_blocking_passed(instance, graph)
    finally:
        instance.dispose()


def test_ray_tasks_share_a_scratch_prefix_in_the_bucket_and_decide_as_local(s3_env, smoke_build, tmp_path,
                                                                             monkeypatch):
    """The global assets on the `ray` engine (2 workers) with the lake in the bucket: the tasks read and write
    parts and their shuffle files through the object store, keep the same documents as the local build, write
    the same shards, and leave no scratch objects behind."""
    pytest.importorskip("ray")
    import fsspec
    from dagster import DagsterInstance, materialize

    from llm_assets.curation.dedup import shuffle
    from llm_assets.defs.curation import GLOBAL
    from llm_assets.defs.resources import CrawlSource, EngineResource, LakeResource
    from llm_assets.defs.tokens import token_shards, tokenizer
    from llm_assets.lake import lake_path
    from llm_assets.tokens.shards import MANIFEST

    assert smoke_build.proc.returncode == 0, smoke_build.proc.stdout[-3000:]
    monkeypatch.setenv("LLM_ASSETS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(shuffle, "PARTS_PER_BUCKET", 1)  # several hash buckets, so the shuffles spread over tasks
    monkeypatch.setattr(shuffle, "PARTS_PER_GROUP", 2)
    fs = fsspec.filesystem("s3")
    fs.put(str(smoke_build.lake / "filtered_documents"), f"{BUCKET}/ray/smoke/", recursive=True)
    crawl = smoke_build.data_dir / "synthetic_crawl" / "smoke-seed0"
    resources = {"lake": LakeResource(root=f"s3://{BUCKET}/ray", profile="smoke"),
                 "crawl": CrawlSource(sources=[str(crawl)], profile="smoke", data_root=str(tmp_path)),
                 "engine": EngineResource(name="ray", workers=2)}
    result = materialize([*GLOBAL, tokenizer, token_shards], resources=resources,
                         instance=DagsterInstance.ephemeral())
    assert result.success
    meta = result.asset_materializations_for_node("deduplicated_documents")[0].metadata
    assert meta["engine"].value == "ray"
    assert meta["path"].value == f"s3://{BUCKET}/ray/smoke/deduplicated_documents"
    remote = lake_path(f"s3://{BUCKET}/ray") / "smoke"
    for stage in ("deduplicated_documents", "quality_documents", "training_mixture"):
        assert _kept_ids(remote, stage) == _kept_ids(smoke_build.lake, stage), stage
    assert (remote / "token_shards" / MANIFEST).read_text() == (smoke_build.lake / "token_shards" / MANIFEST).read_text()
    assert not [o for o in _objects("ray/smoke") if "/.scratch-" in o], "scratch prefixes are removed after each step"
