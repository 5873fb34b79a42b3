"""A remote WARC file that cannot be opened fails in one line: the redacted URL and the root cause."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llm_assets.crawl.warc import UnreadableWarcError, read_warc


class _Refusing(BaseHTTPRequestHandler):
    """404 for every path except /forbidden/..., which is 403."""

    def do_GET(self):  # noqa: N802 (http.server's method name)
        self.send_error(403 if self.path.startswith("/forbidden/") else 404)

    do_HEAD = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


def _error_of(uri: str) -> str:
    with pytest.raises(UnreadableWarcError) as err:
        read_warc(uri)
    message = str(err.value)
    assert "\n" not in message and "secret" not in message
    return message


def test_refused_connection_names_the_url_and_the_cause():
    port = _closed_port()
    message = _error_of(f"http://me:secret@127.0.0.1:{port}/crawl/a.warc.gz")
    assert message.startswith(f"cannot open WARC file http://REDACTED@127.0.0.1:{port}/crawl/a.warc.gz: ")
    assert "connection refused" in message


@pytest.mark.parametrize("path, status", [("/crawl/missing.warc.gz", "HTTP 404"),
                                          ("/forbidden/a.warc.gz", "HTTP 403")])
def test_http_errors_name_the_url_and_the_status(server, path, status):
    message = _error_of(f"{server}{path}?X-Amz-Signature=secret&part=1")
    assert message.startswith(f"cannot open WARC file {server}{path}?X-Amz-Signature=REDACTED&part=1: {status}")
