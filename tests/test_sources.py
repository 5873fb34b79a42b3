"""Crawl sources: presigned URLs are read as given, and no credential reaches a key, a log or metadata."""

from __future__ import annotations

import gzip
import http.server
import threading

import pytest

from llm_assets.crawl import partition_key, read_warc, redact_text, redact_url, resolve_sources


def test_redact_url_hides_userinfo_and_signatures():
    url = ("https://user:s3cret@bucket.example/crawl/a.warc.gz?X-Amz-Credential=AKIAXYZ&X-Amz-Date=20240101"
           "&X-Amz-Signature=abcdef0123&part=2")
    safe = redact_url(url)
    assert "s3cret" not in safe and "user" not in safe and "AKIAXYZ" not in safe and "abcdef0123" not in safe
    assert safe.startswith("https://REDACTED@bucket.example/crawl/a.warc.gz?")
    assert "X-Amz-Date=20240101" in safe and "part=2" in safe
    assert redact_url("https://h.example/x.warc.gz?sig=zz&sv=2024") == "https://h.example/x.warc.gz?sig=REDACTED&sv=2024"
    assert redact_url("https://h.example/x.warc.gz?token=t0k") == "https://h.example/x.warc.gz?token=REDACTED"
    assert redact_url("/data/a.warc.gz") == "/data/a.warc.gz"
    assert redact_url("https://h.example/plain.warc.gz") == "https://h.example/plain.warc.gz"


def test_redact_text_finds_urls_inside_messages():
    msg = "cannot open WARC file http://bob:pw@10.0.0.1:8080/a.warc.gz?Signature=xyz: connection refused"
    safe = redact_text(msg)
    assert "pw" not in safe.replace("open", "") and "xyz" not in safe
    assert safe.endswith(": connection refused")


def test_presigned_url_is_one_source_and_its_key_has_no_query():
    url = "https://bucket.example/crawl/CC-MAIN-1.warc.gz?X-Amz-Signature=abc&X-Amz-Expires=3600"
    assert resolve_sources([url]) == {"CC-MAIN-1": url}
    assert partition_key("https://h.example/dir/f.warc?sig=1#frag") == "f"
    assert partition_key("https://user:pw@h.example/a.warc.gz") == "a"


def test_presigned_url_is_read_as_given(tmp_path):
    """A local HTTP server that answers only the exact signed URL: the reader must not rewrite it."""
    record = (b"WARC/1.1\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:1>\r\n"
              b"WARC-Date: 2024-03-01T12:00:00Z\r\nWARC-Target-URI: https://p.example/\r\n"
              b"Content-Type: application/http; msgtype=response\r\n")
    block = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<p>signed</p>"
    data = gzip.compress(record + f"Content-Length: {len(block)}\r\n\r\n".encode() + block + b"\r\n\r\n")
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            seen.append(self.path)
            ok = self.path == "/a.warc.gz?X-Amz-Signature=abc%2Fdef&X-Amz-Expires=60"
            self.send_response(200 if ok else 403)
            self.send_header("Content-Length", str(len(data) if ok else 0))
            self.end_headers()
            if ok:
                self.wfile.write(data)

        def do_HEAD(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/a.warc.gz?X-Amz-Signature=abc%2Fdef&X-Amz-Expires=60"
        (key, uri), = resolve_sources([url]).items()
        assert key == "a" and uri == url
        read = read_warc(uri)
        assert read.records["url"].to_list() == ["https://p.example/"]
    finally:
        server.shutdown()
    assert all(p.startswith("/a.warc.gz?X-Amz-Signature=abc%2Fdef") for p in seen)


def test_local_glob_still_expands(tmp_path):
    for name in ("a1.warc.gz", "a2.warc.gz", "b.warc.gz"):
        (tmp_path / name).write_bytes(b"")
    assert list(resolve_sources([str(tmp_path / "a?.warc.gz")])) == ["a1", "a2"]
    with pytest.raises(FileNotFoundError, match="names no WARC files"):
        resolve_sources([str(tmp_path / "z*.warc.gz")])


def test_read_errors_of_a_url_with_credentials_are_redacted_and_unchained(tmp_path):
    """Dagster stores a failed step's whole exception chain: the error raised must hold no credential."""
    import socket

    from llm_assets.crawl import UnreadableWarcError
    from llm_assets.crawl.raw import crawl_to_parquet, safe_message
    from llm_assets.crawl.sources import source_file_name

    with socket.socket() as s:  # a port nothing listens on: the connection is refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://bob:hunter2pw@127.0.0.1:{port}/c.warc.gz?X-Amz-Signature=sig%2Fvalue9&X-Amz-Expires=60"
    with pytest.raises(UnreadableWarcError) as caught:
        crawl_to_parquet(url, tmp_path / "c.parquet")
    err = caught.value
    assert err.__cause__ is None and err.__suppress_context__
    text = str(err)
    assert "hunter2pw" not in text and "sig%2Fvalue9" not in text and "sig/value9" not in text, text
    assert f"http://REDACTED@127.0.0.1:{port}/c.warc.gz?X-Amz-Signature=REDACTED" in text, text
    assert not (tmp_path / "c.parquet").exists()
    # credentials quoted outside a URL are replaced too; the stored file name has no query
    assert safe_message("auth bob:hunter2pw failed for sig/value9", url) == "auth REDACTED failed for REDACTED"
    assert source_file_name(url) == "c.warc.gz" and source_file_name("/data/a.warc.gz") == "a.warc.gz"


def test_errors_of_a_plain_url_keep_their_type_and_cause(tmp_path):
    from llm_assets.crawl import UnreadableWarcError
    from llm_assets.crawl.raw import crawl_to_parquet

    with pytest.raises(UnreadableWarcError) as caught:
        crawl_to_parquet(str(tmp_path / "missing.warc.gz"), tmp_path / "m.parquet")
    assert str(tmp_path / "missing.warc.gz") in str(caught.value) and caught.value.__cause__ is not None
