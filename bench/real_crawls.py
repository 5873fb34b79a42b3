"""Real crawls of different kinds, curated with default settings: records read, kept per stage, removed per
reason, wall time.

Each crawl is recorded here, from a site served on 127.0.0.1, by a real archiving client (the machinery of
tests/realweb.py):

- `wget-debian-docs`: the HTML documentation Debian ships under /usr/share/doc (libxslt, nodejs, valgrind,
  libffi, ... manuals; real pages with their CSS and images), recorded by `wget --recursive --warc-file`;
- `warcio-docsite`: the tests' documentation site (real prose, chunked and gzip responses, redirects, a
  404, robots.txt, near-duplicates, PII, other languages and charsets), recorded by warcio's capture_http;
- `browser-like`: the same site visited page by page with a browser's headers, fetching every page's CSS,
  script and images, plus media-only requests (images, a PDF, a redirect to an image).

Then `curate` (the library function the CLI calls, default profile) runs on each, in a fresh output folder.

    .venv/bin/python bench/real_crawls.py [--out DIR] [--doc-root /usr/share/doc] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import realweb  # noqa: E402

STAGES = ("raw_crawl", "extracted_documents", "filtered_documents", "deduplicated_documents",
          "quality_documents", "training_mixture")


def record_crawls(out: Path, doc_root: Path, limit: int | None) -> dict[str, Path]:
    crawls: dict[str, Path] = {}
    if realweb.wget_available() and doc_root.is_dir():
        site = realweb.FolderSite(doc_root, limit)
        with realweb.serve_site(site) as base:
            crawls["wget-debian-docs"] = realweb.record_with_wget(base, out / "wget-debian-docs", out / ".wget",
                                                                  level=8)
        shutil.rmtree(out / ".wget", ignore_errors=True)
    else:
        print(f"skipping wget-debian-docs: wget {'found' if realweb.wget_available() else 'missing'}, "
              f"{doc_root} {'found' if doc_root.is_dir() else 'missing'}", file=sys.stderr)
    site = realweb.Site()
    with realweb.serve_site(site) as base:
        crawls["warcio-docsite"] = realweb.record_with_warcio(base, out / "warcio-docsite.warc.gz")
        pages = [p.path for p in site.pages[::3]]
        browser = out / "browser-like"
        browser.mkdir(parents=True, exist_ok=True)
        realweb.record_with_warcio(base, browser / "pages.warc.gz", pages, follow_links=False, requisites=True,
                                   headers=realweb.BROWSER_HEADERS)
        realweb.record_no_html(base, browser / "media.warc.gz")
        crawls["browser-like"] = browser
    return crawls


def curate_one(name: str, source: Path, out: Path) -> dict:
    from llm_assets.curation.pipeline import curate

    warcs = sorted(str(p) for p in source.glob("*.warc.gz")) if source.is_dir() else [str(source)]
    started = time.perf_counter()
    summary = curate(warcs, out / f"curated-{name}")
    wall = time.perf_counter() - started
    return {"crawl": name, "files": len(warcs), "bytes": sum(Path(w).stat().st_size for w in warcs),
            "wall_s": round(wall, 2), "summary": summary}


def report(rows: list[dict]) -> str:
    lines = ["| crawl | WARC records | responses | extracted | filtered | deduplicated | quality | mixture "
             "| wall s | settings |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        s = row["summary"]
        kept = [str(s[stage]["kept"]) for stage in STAGES]
        lines.append(f"| {row['crawl']} | {s['raw_crawl']['input']} | " + " | ".join(kept)
                     + f" | {row['wall_s']} | {s.get('curation_settings', '?')} |")
    lines.append("")
    for row in rows:
        s = row["summary"]
        lines.append(f"{row['crawl']} ({row['files']} file(s), {row['bytes'] / 1e6:.2f} MB): removed per reason")
        skipped = s["raw_crawl"].get("skipped") or {}
        if skipped:
            lines.append(f"  raw_crawl skipped: {skipped}")
        for stage in STAGES[1:]:
            reasons = s[stage].get("removed_by_reason") or {}
            if reasons:
                lines.append(f"  {stage}: " + ", ".join(f"{k} {v}" for k, v in reasons.items()))
        quality = s.get("quality_classifier", {})
        if quality.get("skipped"):
            lines.append(f"  quality_classifier: skipped ({quality.get('skip_reason')})")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="folder for the WARC files and curated lakes (default: a temporary one)")
    parser.add_argument("--doc-root", default="/usr/share/doc")
    parser.add_argument("--limit", type=int, help="at most this many files of --doc-root")
    parser.add_argument("--json", help="also write the full summaries here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="real-crawls-") as tmp:
        out = Path(args.out or tmp)
        out.mkdir(parents=True, exist_ok=True)
        crawls = record_crawls(out, Path(args.doc_root), args.limit)
        rows = [curate_one(name, path, out) for name, path in crawls.items()]
        print(report(rows))
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
