"""Real WARC files for the tests, recorded from a documentation site served on 127.0.0.1.

The site is a small astronomy guide (the prose lives in `tests/data/backyard_sky.txt`) rendered into
HTML pages with navigation, sidebar and footer boilerplate, plus what a real site also serves: a
robots.txt, CSS, JavaScript, PNG images, a PDF, permanent and temporary redirects, a 404, an empty page,
print versions that nearly duplicate their page, a page with an email address and a phone number, a page
in French, one in windows-1252 and one in latin-1. The server answers HTTP/1.1 with keep-alive, and a
fixed share of the pages goes out with `Transfer-Encoding: chunked`, with `Content-Encoding: gzip` (to
clients that accept it) or with both.

Two real archiving clients record it:

- `record_with_warcio`: warcio's `capture_http` around a `requests` session, driven by a small
  breadth-first crawler that honours robots.txt (every request and response, redirects included, ends
  up in the WARC as the client saw it on the wire);
- `record_with_wget`: `wget --recursive --page-requisites --warc-file=...` (GNU Wget writes its own
  warcinfo, request, response, metadata and resource records).

`record_no_html` records a crawl of images, scripts, styles and redirects only.
Run `python tests/realweb.py OUT_DIR` to write the three WARC files by hand.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import http.server
import json
import re
import shutil
import struct
import subprocess
import sys
import threading
import urllib.robotparser
import zlib
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

SITE_TEXT = Path(__file__).resolve().parent / "data" / "backyard_sky.txt"
SITE_NAME = "The Backyard Sky"
WGET = "/usr/bin/wget"

# pages whose print version (/print/<slug>.html) is served and linked: near-duplicates of the page
PRINT_SLUGS = ("binoculars", "the-moon", "meteors")
# the print version of this page changes one sentence: a near-duplicate rather than an exact one
EDITED_PRINT = "meteors"


@dataclass(frozen=True)
class Page:
    slug: str
    title: str
    paragraphs: tuple[str, ...]
    encoding: str = "utf-8"
    lang: str = "en"

    @property
    def path(self) -> str:
        return "/" if self.slug == "index" else f"/guide/{self.slug}.html"

    @property
    def words(self) -> int:
        return sum(len(p.split()) for p in self.paragraphs)


def load_pages(path: Path = SITE_TEXT) -> list[Page]:
    """The site's pages from the text file: `=== slug | title [| encoding=...]` headers, blank-line paragraphs."""
    pages: list[Page] = []
    head: list[str] | None = None
    body: list[str] = []

    def flush() -> None:
        if head is None:
            return
        options = dict(opt.strip().split("=", 1) for opt in head[2:])
        paragraphs = tuple(" ".join(p.split()) for p in "\n".join(body).split("\n\n") if p.strip())
        slug = head[0].strip()
        pages.append(Page(slug, head[1].strip(), paragraphs, options.get("encoding", "utf-8"),
                          "fr" if slug.startswith("fr-") else "en"))

    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") and head is None:
            continue
        if line.startswith("=== "):
            flush()
            head, body = line[4:].split("|"), []
        else:
            body.append(line)
    flush()
    return pages


# ---------------------------------------------------------------------------------------------- assets


def png_bytes(width: int, height: int, seed: int) -> bytes:
    """A valid RGB PNG with a deterministic pattern."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes((x * 7 + y * 3 + seed) % 256 for x in range(width) for _ in range(3))
                    for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def pdf_bytes() -> bytes:
    """A one-page PDF (binary content a crawler meets under /files/)."""
    stream = b"BT /F1 18 Tf 72 720 Td (Monthly star chart) Tj ET"
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
               b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"]
    out, offsets = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"), []
    for number, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


CSS = """body { font-family: Georgia, serif; max-width: 46em; margin: 0 auto; color: #222; }
header nav a { margin-right: 1em; } .sidebar { float: right; width: 14em; font-size: 90%; }
footer { border-top: 1px solid #ccc; margin-top: 3em; font-size: 80%; color: #555; }
"""
JS = """(function () {
  var toggle = document.getElementById('night-mode');
  if (toggle) { toggle.addEventListener('click', function () { document.body.classList.toggle('red'); }); }
})();
"""
IMAGES = {"logo.png": (48, 48), "plough.png": (64, 40), "moon-terminator.png": (80, 80),
          "saturn.png": (72, 40)}


# ---------------------------------------------------------------------------------------------- the site


@dataclass
class Response:
    status: int
    content_type: str = "text/html; charset=utf-8"
    body: bytes = b""
    location: str | None = None
    chunked: bool = False
    gzip: bool = False


@dataclass
class Site:
    """Every URL path of the documentation site and what the server answers there."""

    pages: list[Page] = field(default_factory=load_pages)

    def __post_init__(self) -> None:
        self.routes: dict[str, Response] = {}
        self.by_slug = {p.slug: p for p in self.pages}
        english = [p for p in self.pages if p.lang == "en" and p.slug != "index"]
        # old links: a permanent move per page, a temporary one to the latest report, one to an image
        for page in english[:6]:
            self.routes[f"/old/{page.slug}.html"] = Response(301, location=page.path)
        self.routes["/latest"] = Response(302, location="/guide/field-trip-report.html")
        self.routes["/logo"] = Response(302, location="/img/logo.png")
        for number, page in enumerate(self.pages):
            # a fixed mix of transfer codings: every third page chunked, every other one gzip
            self.routes[page.path] = Response(200, self._content_type(page), self.render(page, number),
                                              chunked=number % 3 == 0, gzip=number % 2 == 0)
        for slug in PRINT_SLUGS:
            self.routes[f"/print/{slug}.html"] = Response(200, body=self.render_print(self.by_slug[slug]),
                                                          chunked=True)
        self.routes["/robots.txt"] = Response(200, "text/plain", b"User-agent: *\nDisallow: /private/\n")
        self.routes["/private/members.html"] = Response(200, body=b"<html><body>Members only.</body></html>")
        self.routes["/guide/empty.html"] = Response(200, body=b"")
        self.routes["/static/site.css"] = Response(200, "text/css", CSS.encode(), gzip=True)
        self.routes["/static/site.js"] = Response(200, "application/javascript", JS.encode(), chunked=True)
        for number, (name, (w, h)) in enumerate(IMAGES.items()):
            self.routes[f"/img/{name}"] = Response(200, "image/png", png_bytes(w, h, number))
        self.routes["/files/star-chart.pdf"] = Response(200, "application/pdf", pdf_bytes())

    @staticmethod
    def _content_type(page: Page) -> str:
        if page.encoding == "cp1252":
            return "text/html; charset=windows-1252"
        if page.encoding == "latin-1":
            return "text/html"  # the charset is only in the page's <meta> tag, as on many old sites
        return "text/html; charset=utf-8"

    def nav(self) -> str:
        links = [("/", "Home"), ("/guide/getting-started.html", "Getting started"),
                 ("/guide/binoculars.html", "Binoculars"), ("/guide/first-telescope.html", "Telescopes"),
                 ("/guide/planets.html", "Planets"), ("/guide/deep-sky.html", "Deep sky"),
                 ("/guide/glossary.html", "Glossary"), ("/guide/faq.html", "FAQ"), ("/latest", "Latest report")]
        return " ".join(f'<a href="{href}">{text}</a>' for href, text in links)

    def render(self, page: Page, number: int) -> bytes:
        charset = {"cp1252": "windows-1252", "latin-1": "iso-8859-1"}.get(page.encoding, "utf-8")
        body = "\n".join(f"<p>{html.escape(p)}</p>" for p in page.paragraphs)
        others = [p for p in self.pages if p.slug != page.slug]
        related = [others[(number * 7 + k * 11) % len(others)] for k in range(4)]
        extra = []
        if page.slug == "index":
            extra.append('<h2>All chapters</h2>\n<ul class="toc">' + "".join(
                f'<li><a href="{p.path}">{html.escape(p.title)}</a></li>' for p in self.pages if p.slug != "index")
                + '<li><a href="/guide/empty.html">Blank template</a></li>'
                + '<li><a href="/private/members.html">Members area</a></li>'
                + '<li><a href="/files/star-chart.pdf">Printable star chart (PDF)</a></li></ul>')
        if page.slug in PRINT_SLUGS:
            extra.append(f'<p class="tools"><a href="/print/{page.slug}.html">Print this page</a></p>')
        if number % 5 == 1:
            old = [k for k in self.routes if k.startswith("/old/")]
            extra.append('<p class="tools"><a href="/guide/removed-chapter.html">Our old chapter on filters</a> '
                         f'<a href="{old[number % len(old)]}">An old link</a> <a href="/logo">Logo</a></p>')
        image = list(IMAGES)[number % len(IMAGES)]
        meta = (f'<meta charset="{charset}">' if page.encoding != "latin-1"
                else f'<meta http-equiv="Content-Type" content="text/html; charset={charset}">')
        doc = f"""<!DOCTYPE html>
<html lang="{page.lang}">
<head>
{meta}
<title>{html.escape(page.title)} - {SITE_NAME}</title>
<link rel="stylesheet" href="/static/site.css">
<script src="/static/site.js" defer></script>
</head>
<body>
<header><a href="/"><img src="/img/logo.png" alt="{SITE_NAME} logo"></a>
<nav>{self.nav()}</nav>
<button id="night-mode">Night mode</button></header>
<aside class="sidebar"><h3>Related chapters</h3><ul>
{"".join(f'<li><a href="{r.path}">{html.escape(r.title)}</a></li>' for r in related)}
</ul></aside>
<main>
<h1>{html.escape(page.title)}</h1>
<figure><img src="/img/{image}" alt=""></figure>
{body}
{"".join(extra)}
</main>
<footer><p>Copyright 2024 the observing club. Text licensed CC BY-SA 4.0.</p>
<p><a href="/guide/observer-news.html">Contact</a> | <a href="/guide/history-of-the-club.html">About</a></p>
</footer>
</body>
</html>
"""
        return doc.encode(page.encoding)

    def render_print(self, page: Page) -> bytes:
        """The printer-friendly copy: the same prose with other markup; one copy has a sentence edited."""
        paragraphs = list(page.paragraphs)
        if page.slug == EDITED_PRINT:
            paragraphs[-1] = paragraphs[-1].replace("The Moon is the main enemy", "Moonlight is the chief enemy")
        body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
        return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
                f"<title>{html.escape(page.title)} (print)</title></head><body>"
                f"<h1>{html.escape(page.title)}</h1>\n{body}\n"
                f"<p>Printed from {SITE_NAME}.</p></body></html>").encode()


MEDIA_TYPES = {".html": "text/html", ".htm": "text/html", ".css": "text/css", ".js": "application/javascript",
               ".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".svg": "image/svg+xml",
               ".txt": "text/plain"}


class FolderSite:
    """Every file of a folder tree (e.g. the HTML documentation Debian ships under /usr/share/doc) as a site.

    `/` lists the HTML files; files are served as they are on disk (no charset added), with the same mix
    of chunked and gzip responses as `Site`. `limit` caps the number of files.
    """

    def __init__(self, root: str | Path, limit: int | None = None) -> None:
        root = Path(root)
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA_TYPES)[:limit]
        self.routes: dict[str, Response] = {}
        for number, file in enumerate(files):
            kind = MEDIA_TYPES[file.suffix.lower()]
            self.routes["/" + file.relative_to(root).as_posix()] = Response(
                200, kind, file.read_bytes(), chunked=number % 3 == 0, gzip=number % 2 == 0 and "image" not in kind)
        pages = [path for path, r in self.routes.items() if r.content_type == "text/html"]
        index = "".join(f'<li><a href="{html.escape(p)}">{html.escape(p)}</a></li>' for p in pages)
        self.routes["/"] = Response(200, body=f"<html><body><ul>{index}</ul></body></html>".encode(), chunked=True)
        self.routes["/robots.txt"] = Response(200, "text/plain", b"User-agent: *\nDisallow:\n")


# ---------------------------------------------------------------------------------------------- the server


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and chunked responses are legal
    server_version = "BackyardSky/1.0"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms stall per response
    site: Site

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass

    def do_HEAD(self):  # noqa: N802 - http.server's naming
        self._answer(head=True)

    def do_GET(self):  # noqa: N802
        self._answer(head=False)

    def _answer(self, head: bool) -> None:
        path = urlsplit(self.path).path
        resp = self.site.routes.get(path)
        if resp is None:
            resp = Response(404, body=b"<html><head><title>Not found</title></head><body><h1>404</h1>"
                                      b"<p>This page does not exist.</p></body></html>")
        self.send_response(resp.status)
        if resp.location:
            self.send_header("Location", resp.location)
        self.send_header("Content-Type", resp.content_type)
        body = resp.body
        if resp.gzip and "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body, mtime=0)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Vary", "Accept-Encoding")
        etag = hashlib.sha1(body).hexdigest()[:16]
        self.send_header("ETag", f'"{etag}"')
        self.send_header("Cache-Control", "max-age=600")
        if resp.chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if not head:
                for start in range(0, len(body), 1000):
                    piece = body[start:start + 1000]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)


@contextmanager
def serve_site(site: Site | FolderSite | None = None) -> Iterator[str]:
    """Serve `site` on 127.0.0.1 (a free port) in a thread; yields the base URL `http://127.0.0.1:PORT`."""
    handler = type("SiteHandler", (_Handler,), {"site": site or Site()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="realweb-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class FileServer:
    """One file on 127.0.0.1 (a free port), for GET and HEAD, as a context manager.

    `answer(request)` returns the status and extra headers of a request; 200 sends the file, any other
    status an empty body. Subclasses override it to hold, authenticate or refuse requests. `served`
    counts the bodies sent.
    """

    def __init__(self, data: bytes, path: str = "/crawl.warc.gz"):
        self.path, self.served = path, 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, body: bool) -> None:
                status, headers = owner.answer(self)
                ok = status == 200
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data) if ok else 0))
                self.end_headers()
                if ok and body:
                    owner.served += 1
                    self.wfile.write(data)

            def do_GET(self):  # noqa: N802 - http.server's naming
                self._answer(body=True)

            def do_HEAD(self):  # noqa: N802
                self._answer(body=False)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="file-server", daemon=True)
        self.base = f"http://127.0.0.1:{self.httpd.server_port}"

    def answer(self, request: http.server.BaseHTTPRequestHandler) -> tuple[int, dict[str, str]]:
        return 200, {}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------------------------------------- clients


class _Links(HTMLParser):
    def __init__(self, requisites: bool, anchors: bool = True) -> None:
        super().__init__()
        self.requisites, self.anchors = requisites, anchors
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if self.anchors and tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        elif self.requisites and tag in ("img", "script") and attrs.get("src"):
            self.links.append(attrs["src"])
        elif self.requisites and tag == "link" and attrs.get("href"):
            self.links.append(attrs["href"])


BROWSER_HEADERS = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-GB,en;q=0.5",
    "Accept-Encoding": "gzip, deflate",
}


def record_with_warcio(base_url: str, warc_path: str | Path, start: list[str] | tuple = ("/",), *,
                       follow_links: bool = True, requisites: bool = True, max_requests: int = 500,
                       headers: dict | None = None) -> Path:
    """Crawl `base_url` from the `start` paths with `requests` inside warcio's `capture_http`.

    Same-host links are followed breadth-first when `follow_links`, and images, scripts and styles of
    every fetched page when `requisites`;
    robots.txt is fetched first and honoured. Redirects are followed by `requests`, so each hop is its
    own request/response pair in the WARC. Returns the path of the gzipped WARC file.

    The client runs in a fresh Python process: warcio records by replacing `http.client.HTTPConnection`
    when it is imported, which only reaches `requests` if urllib3 was not imported before it (in a test
    session Dagster has long imported it).
    """
    warc_path = Path(warc_path)
    warc_path.parent.mkdir(parents=True, exist_ok=True)
    args = {"base_url": base_url, "warc_path": str(warc_path), "start": list(start), "follow_links": follow_links,
            "requisites": requisites, "max_requests": max_requests, "headers": headers}
    proc = subprocess.run([sys.executable, __file__, "--warcio-client", json.dumps(args)], capture_output=True,
                          text=True, timeout=300)
    if proc.returncode != 0 or not warc_path.is_file():
        raise RuntimeError(f"warcio capture of {base_url} failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return warc_path


def _warcio_client(base_url: str, warc_path: str, start: list[str], follow_links: bool, requisites: bool,
                   max_requests: int, headers: dict | None) -> None:
    from warcio.capture_http import capture_http  # noqa: I001 - must come before requests, see above

    import requests

    host = urlsplit(base_url).netloc
    seen: set[str] = set()
    queue = deque(urljoin(base_url, s) for s in start)
    with capture_http(warc_path), requests.Session() as session:
        session.headers.update(headers or {"User-Agent": "backyard-sky-test-crawler/1.0"})
        robots = urllib.robotparser.RobotFileParser()
        robots.parse(session.get(urljoin(base_url, "/robots.txt"), timeout=30).text.splitlines())
        requests_made = 1
        while queue and requests_made < max_requests:
            url = queue.popleft().split("#")[0]
            if url in seen or urlsplit(url).netloc != host or not robots.can_fetch("*", url):
                continue
            seen.add(url)
            resp = session.get(url, timeout=30)
            requests_made += 1 + len(resp.history)
            seen.update(r.url for r in resp.history)
            seen.add(resp.url)
            if (follow_links or requisites) and resp.ok and "html" in resp.headers.get("Content-Type", ""):
                parser = _Links(requisites, follow_links)
                parser.feed(resp.text)
                queue.extend(urljoin(resp.url, link) for link in parser.links)


def wget_available() -> bool:
    return shutil.which("wget") is not None or Path(WGET).is_file()


def record_with_wget(base_url: str, warc_base: str | Path, workdir: str | Path, level: int = 6) -> Path:
    """`wget --recursive --page-requisites --warc-file=warc_base` of the site; returns `warc_base.warc.gz`.

    wget exits 8 when some response was an HTTP error (the site's 404 is one): that is expected here.
    """
    exe = shutil.which("wget") or WGET
    warc_base = Path(warc_base)
    warc_base.parent.mkdir(parents=True, exist_ok=True)
    cmd = [exe, "--recursive", f"--level={level}", "--page-requisites", "--no-verbose", "--tries=1",
           "--timeout=30", f"--warc-file={warc_base}", "--delete-after", "--no-host-directories",
           f"--directory-prefix={workdir}", "-e", "robots=on", base_url + "/"]
    if "--compression" in subprocess.run([exe, "--help"], capture_output=True, text=True).stdout:
        cmd.insert(1, "--compression=auto")  # ask for gzip like a browser does
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    out = warc_base.with_name(warc_base.name + ".warc.gz")
    if proc.returncode not in (0, 8) or not out.is_file():
        raise RuntimeError(f"wget failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return out


def record_no_html(base_url: str, warc_path: str | Path) -> Path:
    """A crawl without a single HTML page: images, a script, a stylesheet, a PDF and a redirect to an image."""
    start = ["/img/" + name for name in IMAGES] + ["/static/site.css", "/static/site.js",
                                                  "/files/star-chart.pdf", "/logo"]
    return record_with_warcio(base_url, warc_path, start, follow_links=False, requisites=False)


def record_all(out_dir: str | Path, site: Site | None = None, wget: bool = True) -> dict[str, Path]:
    """The three crawls of the site into `out_dir`: `{"warcio": ..., "wget": ..., "no_html": ...}`."""
    out_dir = Path(out_dir)
    out = {}
    with serve_site(site) as base:
        out["warcio"] = record_with_warcio(base, out_dir / "docs-warcio.warc.gz")
        if wget and wget_available():
            out["wget"] = record_with_wget(base, out_dir / "docs-wget", out_dir / ".wget-files")
            shutil.rmtree(out_dir / ".wget-files", ignore_errors=True)
        out["no_html"] = record_no_html(base, out_dir / "media-only.warc.gz")
    return out


def warc_responses(path: str | Path) -> list[dict]:
    """Response records of a WARC file as warcio reads them: url, status, headers and decoded body."""
    from warcio.archiveiterator import ArchiveIterator

    rows = []
    with open(path, "rb") as handle:
        for record in ArchiveIterator(handle):
            if record.rec_type != "response":
                continue
            headers = record.http_headers
            rows.append({"url": record.rec_headers.get_header("WARC-Target-URI"),
                         "record_id": record.rec_headers.get_header("WARC-Record-ID"),
                         "status": int(headers.get_statuscode()),
                         "headers": {k.lower(): v for k, v in headers.headers},
                         "body": record.content_stream().read()})
    return rows


def word_count(text: str) -> int:
    return len(re.findall(r"\w+", text))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--warcio-client"]:
        _warcio_client(**json.loads(sys.argv[2]))
        sys.exit(0)
    for kind, path in record_all(sys.argv[1] if len(sys.argv) > 1 else "real_crawl").items():
        print(kind, path, path.stat().st_size)
