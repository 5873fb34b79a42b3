"""Stage 1, `extracted_documents`: HTTP responses to documents (main-content text, title, language).

Pages are extracted in worker processes, one page at a time under a deadline (`cfg.extraction_timeout_s`):
HTML parsers are C code that no signal can interrupt, so a page past its deadline costs only its worker,
which is killed and replaced. Every dropped response keeps a reason (`http_status:404`,
`not_html:application/pdf`, `binary_body`, `empty_text`, `extraction_error`, `extraction_timeout`,
`language:de`, `language_score`).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import subprocess
import sys
import time
from collections import deque
from multiprocessing.connection import wait
from pathlib import Path

import polars as pl

from llm_assets.curation.filters import extraction_filters, judge, split
from llm_assets.lake import removed_frame
from llm_assets.profiles import CurationConfig
from llm_assets.settings import EXTRACTORS

log = logging.getLogger(__name__)

STAGE = "extracted_documents"
HTML_TYPES = ("text/html", "application/xhtml+xml")
# chrome that main-content heuristics can miss: consent banners, skip links, share bars
BOILERPLATE_SELECTORS = [
    "[class*=cookie]", "[id*=cookie]", "[class*=consent]", "[id*=consent]", "[class*=gdpr]",
    "[class*=banner]", "[class*=share]", "[class*=skip]", "[role=navigation]", "[aria-hidden=true]",
]
# a "text/html" body this control-byte heavy is an image or archive served under the wrong type
BINARY_SNIFF_BYTES = 4096
BINARY_CONTROL_SHARE = 0.05
LANGUAGE_SAMPLE_CHARS = 1500
# lingua tells these apart (plus CurationConfig.languages); fewer candidates is faster and, on short
# pages, fewer look-alike languages to confuse English with. A page in another language is still "not en".
DETECTED_LANGUAGES = ("ar", "cs", "da", "de", "el", "en", "es", "fa", "fi", "fr", "he", "hi", "hu", "id", "it",
                      "ja", "ko", "nb", "nl", "pl", "pt", "ro", "ru", "sv", "th", "tr", "uk", "vi", "zh")
DOCUMENT_COLUMNS = ("warc_record_id", "url", "host", "warc_file", "fetch_time", "title", "text", "language",
                    "language_score")
WORKER_START_TIMEOUT_S = 120.0


class BinaryBodyError(ValueError):
    """The body is not text, whatever its Content-Type says."""


def looks_binary(body: bytes) -> bool:
    head = body[:BINARY_SNIFF_BYTES]
    if b"\x00" in head:
        return True
    controls = sum(1 for b in head if b < 9 or 13 < b < 32)
    return controls > BINARY_CONTROL_SHARE * max(len(head), 1)


def decode_html(body: bytes, http_charset: str | None) -> tuple[str, str]:
    """(HTML text, encoding used): the HTTP charset first, then `<meta charset>`, then detection."""
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding, map_encoding_to_html5

    encoding = map_encoding_to_html5(http_charset) if http_charset else None
    if not encoding:
        encoding = detect_encoding(body, from_html_meta=True)
    return bytes_to_str(body, encoding), encoding


def extract_page(body: bytes, http_charset: str | None, extractor: str = "resiliparse") -> tuple[str, str]:
    """(title, main-content text) of one HTML page; navigation, footers and banners left out."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    if looks_binary(body):
        raise BinaryBodyError("binary body")
    html, _ = decode_html(body, http_charset)
    tree = HTMLTree.parse(html)
    title = (tree.title or "").strip()
    if extractor == "resiliparse":
        text = extract_plain_text(tree, preserve_formatting=True, main_content=True, list_bullets=True,
                                  alt_texts=False, links=False, form_fields=False, noscript=False,
                                  skip_elements=BOILERPLATE_SELECTORS)
    elif extractor == "trafilatura":
        import trafilatura

        text = trafilatura.extract(html, include_comments=False, include_tables=True, include_links=False,
                                   include_images=False, deduplicate=False) or ""
    else:
        raise ValueError(f"unknown extractor {extractor!r}; choose one of {', '.join(EXTRACTORS)}")
    lines = (" ".join(line.split()) for line in text.splitlines())
    return title, "\n".join(line for line in lines if line)


def serve_pages(extractor: str) -> None:
    """Worker loop: extract pages read from stdin until told to stop (`None`), answer on the original stdout."""
    from multiprocessing.connection import Connection

    answer_fd = os.dup(1)
    os.dup2(2, 1)  # a library printing to stdout must not corrupt the answers
    jobs, answers = Connection(0, writable=False), Connection(answer_fd, readable=False)
    extract_page(b"<html><title>warm</title><p>up</p></html>", "utf-8", extractor)  # import before first deadline
    answers.send("ready")
    while True:
        job = jobs.recv()
        if job is None:
            return
        index, body, charset = job
        try:
            title, text = extract_page(body, charset, extractor)
            answers.send((index, "ok", title, text))
        except BinaryBodyError:
            answers.send((index, "binary_body", None, None))
        except Exception as exc:  # any parser failure costs this page only
            answers.send((index, "extraction_error", None, f"{type(exc).__name__}: {exc}"))


class _Worker:
    """A child interpreter running `serve_pages` (a fresh process: no forked locks, no __main__ re-import)."""

    def __init__(self, extractor: str):
        from multiprocessing.connection import Connection

        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        code = f"from llm_assets.curation.extraction import serve_pages; serve_pages({extractor!r})"
        self.process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=env)
        self.jobs = Connection(os.dup(self.process.stdin.fileno()), readable=False)
        self.conn = Connection(os.dup(self.process.stdout.fileno()), writable=False)
        self.process.stdin.close()
        self.process.stdout.close()
        self.job: int | None = None
        self.deadline = 0.0
        if not self.conn.poll(WORKER_START_TIMEOUT_S) or self.conn.recv() != "ready":
            self.kill()
            raise RuntimeError(f"extraction worker did not start within {WORKER_START_TIMEOUT_S:.0f}s")

    def send(self, job) -> None:
        self.jobs.send(job)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self.jobs.close()
        self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.jobs.send(None)
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.jobs.close()
        self.conn.close()


_IDLE_WORKERS: dict[tuple[int, str], list[_Worker]] = {}


def _take_workers(extractor: str, count: int) -> list[_Worker]:
    """Idle workers of this process (starting one costs ~0.5 s: reuse them across calls), topped up."""
    idle = _IDLE_WORKERS.pop((os.getpid(), extractor), [])
    alive = [w for w in idle if w.process.poll() is None]
    for worker in idle:
        if worker not in alive:
            worker.kill()
    while len(alive) < count:
        alive.append(_Worker(extractor))
    for extra in alive[count:]:
        extra.stop()
    return alive[:count]


def _release_workers(extractor: str, pool: list[_Worker]) -> None:
    healthy = [w for w in pool if w.job is None and w.process.poll() is None]
    for worker in pool:
        if worker not in healthy:
            worker.kill()
    _IDLE_WORKERS[(os.getpid(), extractor)] = healthy


@atexit.register
def _stop_idle_workers() -> None:
    for (pid, _), pool in list(_IDLE_WORKERS.items()):
        if pid == os.getpid():
            for worker in pool:
                worker.stop()
    _IDLE_WORKERS.clear()


def extract_pages(bodies: list[bytes], charsets: list[str | None], extractor: str = "resiliparse",
                  timeout_s: float = 5.0, workers: int = 2) -> list[tuple[str, str | None, str | None]]:
    """(status, title, text-or-error) per page, each page under its own `timeout_s` deadline.

    status is "ok", "binary_body", "extraction_error" or "extraction_timeout".
    """
    if extractor not in EXTRACTORS:
        raise ValueError(f"unknown extractor {extractor!r} (CurationConfig.extractor); "
                         f"choose one of {', '.join(EXTRACTORS)}")
    results: list[tuple[str, str | None, str | None]] = [("extraction_error", None, "not run")] * len(bodies)
    if not bodies:
        return results
    pending = deque(range(len(bodies)))
    pool = _take_workers(extractor, max(1, min(workers, len(bodies))))
    done = 0
    last_log = time.monotonic()
    try:
        while pending or any(w.job is not None for w in pool):
            for worker in pool:
                if worker.job is None and pending:
                    index = pending.popleft()
                    worker.send((index, bodies[index], charsets[index]))
                    worker.job, worker.deadline = index, time.monotonic() + timeout_s
            busy = [w for w in pool if w.job is not None]
            next_deadline = min(w.deadline for w in busy)
            ready = wait([w.conn for w in busy], timeout=max(0.0, next_deadline - time.monotonic()))
            for worker in busy:
                if worker.conn in ready:
                    try:
                        index, status, title, text = worker.conn.recv()
                    except (EOFError, OSError):  # the worker died (out of memory, a crash in C code)
                        results[worker.job] = ("extraction_error", None, "extraction worker died")
                        log.warning("extraction worker died on page %d; restarting it", worker.job)
                        worker.kill()
                        pool[pool.index(worker)] = _Worker(extractor)
                    else:
                        results[index] = (status, title, text)
                        worker.job = None
                    done += 1
                elif time.monotonic() >= worker.deadline:
                    results[worker.job] = ("extraction_timeout", None, None)
                    log.warning("page %d exceeded the %.3gs extraction deadline; restarting its worker",
                                worker.job, timeout_s)
                    worker.kill()
                    pool[pool.index(worker)] = _Worker(extractor)
                    done += 1
            if time.monotonic() - last_log > 10:
                log.info("extracted %d/%d pages", done, len(bodies))
                last_log = time.monotonic()
    finally:
        _release_workers(extractor, pool)
    return results


@functools.cache
def language_detector(extra_languages: tuple[str, ...] = ()):
    """One lingua detector per process and language set (building one loads its language models)."""
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    codes = sorted(set(DETECTED_LANGUAGES) | {c.lower() for c in extra_languages})
    unknown = [c for c in codes if not hasattr(IsoCode639_1, c.upper())]
    if unknown:
        raise ValueError(f"unknown ISO 639-1 language codes {unknown} (CurationConfig.languages)")
    languages = [Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in codes]
    return LanguageDetectorBuilder.from_languages(*languages).with_low_accuracy_mode().build()


def language_sample(text: str) -> str:
    """The start of `text` without capitalised words: names say little about a page's language."""
    head = text[:LANGUAGE_SAMPLE_CHARS]
    words = [w for w in head.split() if not w[:1].isupper()]
    return " ".join(words) if len(words) >= 3 else head


def detect_languages(texts: list[str], languages: tuple[str, ...] = ()) -> tuple[list[str], list[float]]:
    """(ISO 639-1 code, confidence) per text; "unknown" with score 0 when lingua finds no language.

    Confidences are rounded to 9 decimals: lingua's sums run in an order that differs between processes
    (in their last bit), and the same page must get the same score in any worker."""
    detector = language_detector(tuple(languages))
    codes, scores = [], []
    for values in detector.compute_language_confidence_values_in_parallel([language_sample(t) for t in texts]):
        if values and values[0].value > 0:
            codes.append(values[0].language.iso_code_639_1.name.lower())
            scores.append(round(float(values[0].value), 9))
        else:
            codes.append("unknown")
            scores.append(0.0)
    return codes, scores


def _removed(rows: pl.DataFrame, reason: pl.Expr | str) -> pl.DataFrame:
    out = removed_frame(rows, STAGE, reason)
    return out if "sample" in out.columns else out.with_columns(pl.lit(None, pl.Utf8).alias("sample"))


def extract_documents(raw: pl.DataFrame, cfg: CurationConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`raw_crawl` rows to documents (kept) and dropped responses with a reason (removed)."""
    missing = {"url", "warc_record_id", "warc_file", "fetch_time", "http_status", "content_type", "charset",
               "body", "host"} - set(raw.columns)
    if missing:
        raise ValueError(f"raw crawl frame lacks columns {sorted(missing)}; expected llm_assets.crawl rows")
    content_type = pl.col("content_type").fill_null("unknown").str.to_lowercase()
    reason = (
        pl.when(pl.col("http_status") != 200).then(pl.format("http_status:{}", pl.col("http_status")))
        .when(~content_type.is_in(HTML_TYPES)).then(pl.format("not_html:{}", content_type))
        .when(pl.col("body").is_null() | (pl.col("body").bin.size() == 0)).then(pl.lit("empty_body"))
        .otherwise(pl.lit(None, pl.Utf8))
    )
    staged = raw.with_columns(reason.alias("_reason"))
    removed = [_removed(staged.filter(pl.col("_reason").is_not_null()), pl.col("_reason"))]
    pages = staged.filter(pl.col("_reason").is_null()).drop("_reason")
    log.info("extracting %d HTML pages of %d responses with %s", pages.height, raw.height, cfg.extractor)

    results = extract_pages(pages["body"].to_list(), pages["charset"].to_list(), cfg.extractor,
                            cfg.extraction_timeout_s, cfg.workers)
    statuses = [s for s, _, _ in results]
    for status, _, detail in results:
        if status == "extraction_error":
            log.debug("extraction error: %s", detail)
    texts = [text if status == "ok" else None for status, _, text in results]
    docs = pages.select("warc_record_id", "url", "host", "warc_file", "fetch_time").with_columns(
        pl.Series("title", [title for _, title, _ in results], dtype=pl.Utf8),
        pl.Series("text", texts, dtype=pl.Utf8),
        pl.Series("_status", statuses, dtype=pl.Utf8),
    ).with_columns(
        pl.when(pl.col("_status") != "ok").then(pl.col("_status"))
        .when(pl.col("text").str.strip_chars().str.len_chars() == 0).then(pl.lit("empty_text"))
        .otherwise(pl.lit(None, pl.Utf8)).alias("_reason")
    )
    removed.append(_removed(docs.filter(pl.col("_reason").is_not_null()), pl.col("_reason")))
    docs = docs.filter(pl.col("_reason").is_null()).drop("_reason", "_status")

    codes, scores = detect_languages(docs["text"].to_list(), tuple(cfg.languages))
    docs = docs.with_columns(pl.Series("language", codes, dtype=pl.Utf8),
                             pl.Series("language_score", scores, dtype=pl.Float64))
    kept, dropped = split(docs, judge(docs, extraction_filters(cfg)), STAGE)
    removed.append(dropped)
    kept = kept.select(DOCUMENT_COLUMNS)
    removed_all = pl.concat(removed, how="vertical_relaxed")
    log.info("extraction kept %d of %d responses", kept.height, raw.height)
    return kept, removed_all
