"""No credential of a crawl URL is stored or logged: a WARC served on 127.0.0.1 behind basic auth and a
presigned-style signature is curated and materialized as raw_crawl, then every byte the runs left (Dagster's
sqlite event logs and compute logs, the lake's Parquet, the console) is searched for the secrets."""

from __future__ import annotations

import base64
import contextlib
import json
import sqlite3
import subprocess
import sys
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import realweb
from conftest import REPO, make_dagster_home, run_build

USER, PASSWORD = "crawler", "secret-pw-7f3a9"
SIGNATURE = "SIGc0ffee5ecret%2Fab12"  # with an encoded '/', as S3 signatures often have
WRONG_SIGNATURE = "SIGbadbadsecret99"
SECRETS = (PASSWORD, "secret", "SIGc0ffee", "c0ffee5ecret/ab12", WRONG_SIGNATURE,
           base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())


class SignedWarcServer(realweb.FileServer):
    """Serves one WARC file at `/crawl.warc.gz?X-Amz-Signature=...` to basic auth `USER:PASSWORD` only."""

    EXPECTED_AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    def answer(self, request):
        if request.headers.get("Authorization") != self.EXPECTED_AUTH:
            return 401, {"WWW-Authenticate": 'Basic realm="crawl"'}
        return (200 if request.path == f"{self.path}?X-Amz-Signature={SIGNATURE}&X-Amz-Expires=3600" else 403), {}

    def url(self, signature: str = SIGNATURE) -> str:
        return (f"http://{USER}:{PASSWORD}@127.0.0.1:{self.httpd.server_port}{self.path}"
                f"?X-Amz-Signature={signature}&X-Amz-Expires=3600")


def curate_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llm_assets", "curate", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=900)


def parquet_strings(path: Path) -> str:
    """Every string value of a Parquet file (the file itself is zstd-compressed: grep cannot see them)."""
    table = pq.read_table(path)
    values = []
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            values.extend(v for v in column.to_pylist() if v)
    return "\n".join(values) + "\n" + json.dumps(str(table.schema.metadata))


def sqlite_values(path: Path) -> str:
    """Every value of every table of a sqlite file, with zlib-compressed blobs (Dagster's run and job
    snapshots) decompressed: grep cannot see inside them."""
    values = []
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        tables = [name for (name,) in db.execute("select name from sqlite_master where type = 'table'")]
        for table in tables:
            for row in db.execute(f'select * from "{table}"'):
                for value in row:
                    if isinstance(value, bytes):
                        with contextlib.suppress(zlib.error):
                            value = zlib.decompress(value)
                        value = value.decode("utf-8", "replace")
                    values.append(str(value))
    return "\n".join(values)


def leaks(folders: list[Path], texts: dict[str, str]) -> list[str]:
    """`where: secret` for every secret found in a file under `folders` or in one of `texts`."""
    found = []
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            raw = path.read_bytes()
            text = raw.decode("utf-8", "replace")
            if path.suffix == ".parquet":
                text += parquet_strings(path)
            elif path.suffix == ".db":
                text += sqlite_values(path)
            found += [f"{path}: {s}" for s in SECRETS if s.encode() in raw or s in text]
    for name, text in texts.items():
        found += [f"{name}: {s}" for s in SECRETS if s in text]
    return found


@pytest.fixture(scope="module")
def server(smoke_crawl):
    with SignedWarcServer((smoke_crawl / "crawl-00000.warc.gz").read_bytes()) as running:
        yield running


def test_no_credential_of_a_crawl_url_is_stored_or_logged(tmp_path, server):
    url = server.url()
    lake = tmp_path / "curated"
    curated = curate_cli("--warc", url, "--out", str(lake), "--profile", "smoke")
    assert curated.returncode == 0, curated.stderr[-3000:]
    summary = json.loads(curated.stdout[curated.stdout.index("{"):])
    assert summary["raw_crawl"]["kept"] > 0 and server.served >= 1
    assert (lake / "raw_crawl" / "kept" / "crawl.parquet").exists()  # the key has no query string

    home, data = make_dagster_home(tmp_path / "home"), tmp_path / "data"
    built = run_build(home, data, "--crawl", url, "--select", "key:raw_crawl", "--workers", "1")
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    raw = pq.read_table(data / "smoke" / "raw_crawl" / "kept" / "crawl.parquet", columns=["warc_file"])
    assert set(raw["warc_file"].to_pylist()) == {"crawl.warc.gz"}

    # the same runs with a signature the server refuses: the errors name the URL, redacted
    refused_url = server.url(WRONG_SIGNATURE)
    refused = curate_cli("--warc", refused_url, "--out", str(tmp_path / "refused"), "--profile", "smoke")
    assert refused.returncode != 0 and "REDACTED@127.0.0.1" in refused.stderr, refused.stderr[-3000:]
    failed = run_build(home, data, "--crawl", refused_url, "--select", "key:raw_crawl", "--workers", "1")
    assert failed.returncode != 0, failed.stdout[-3000:]
    assert "X-Amz-Signature=REDACTED" in failed.stdout + failed.stderr, failed.stdout[-3000:]

    files = list(home.rglob("*"))
    assert any(p.name.endswith(".db") for p in files), "no event log to search"
    # the search sees inside compressed snapshots: the run's job snapshot names the asset it materialized
    assert "raw_crawl" in sqlite_values(home / "history" / "runs.db")
    found = leaks([home, data, lake, tmp_path / "refused"],
                  {f"{name} {stream}": getattr(proc, stream) for name, proc in
                   (("curate", curated), ("build", built), ("refused curate", refused), ("failed build", failed))
                   for stream in ("stdout", "stderr")})
    assert not found, "\n".join(found[:20])
