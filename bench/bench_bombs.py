"""Gzip member bombs: peak memory and wall time of reading a small WARC whose gzip member inflates to GiBs.

    python bench/bench_bombs.py [--before DIR] [--gib 1] [--big] [--curate] [--rss-limit-mb 8000]

Each case is a WARC of a few ordinary pages plus one response record whose gzip member inflates to `--gib`
GiB (about 1 MB on disk per GiB): as the last member with its Content-Length, as the last member without one,
and in the middle with and without one (the pages before and after it must still be read). `--big` adds a last member of
about 4 MB compressed (4 GiB inflated). Every case is read in a child process, `crawl_to_parquet` at the
default `max_body_bytes` (10 MiB), or with `--curate` by `python -m llm_assets curate`; the child's peak RSS
(its VmHWM, and wait4's ru_maxrss) and wall time are printed per tree. `--before DIR` is a checkout of the
committed code (`git worktree add DIR HEAD`), run side by side with this tree; a child over `--rss-limit-mb`
is killed and shown as such.
"""

from __future__ import annotations

import argparse
import gzip
import os
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PIECE = b"<p>" + b"a" * ((1 << 20) - 3)  # 1 MiB of one repeated byte: deflate's best ratio, about 1:1030

READER = """
import json, sys
from llm_assets.crawl.raw import crawl_to_parquet
stats = crawl_to_parquet(sys.argv[1], sys.argv[2])
print(json.dumps({k: stats[k] for k in ("rows", "records_seen", "skipped", "repaired")}))
"""


def record_head(url: str, block_length: int | None) -> bytes:
    length = b"" if block_length is None else f"Content-Length: {block_length}\r\n".encode()
    return (b"WARC/1.1\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:bomb-" + url[-12:].encode()
            + b">\r\nWARC-Date: 2024-03-01T12:00:00Z\r\nWARC-Target-URI: " + url.encode()
            + b"\r\nContent-Type: application/http; msgtype=response\r\n" + length + b"\r\n")


def page_member(i: int) -> bytes:
    body = f"<html><body><p>Ordinary page {i}, read before and after the bomb.</p></body></html>".encode()
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + body
    return gzip.compress(record_head(f"https://pages.example/{i:04d}", len(http)) + http + b"\r\n\r\n", mtime=0)


def bomb_member(mib: int, content_length: bool) -> bytes:
    """One gzip member holding a response record whose HTML body is `mib` MiB."""
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n"
    head = record_head("https://bomb.example/000000000000", len(http) + mib * len(PIECE) if content_length else None)
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    out = [z.compress(head + http)]
    out += [z.compress(PIECE) for _ in range(mib)]
    out.append(z.compress(b"\r\n\r\n") + z.flush())
    return b"".join(out)


def build_cases(folder: Path, gib: int, big: bool) -> dict[str, Path]:
    pages = [page_member(i) for i in range(4)]
    mib = gib << 10
    cases = {
        f"last member {gib} GiB, Content-Length": pages + [bomb_member(mib, True)],
        f"last member {gib} GiB, no Content-Length": pages + [bomb_member(mib, False)],
        f"middle member {gib} GiB, Content-Length": pages[:2] + [bomb_member(mib, True)] + pages[2:],
        f"middle member {gib} GiB, no Content-Length": pages[:2] + [bomb_member(mib, False)] + pages[2:],
    }
    if big:
        cases["last member 4 MB (4 GiB), Content-Length"] = pages + [bomb_member(4 << 10, True)]
    paths = {}
    for n, (name, members) in enumerate(cases.items()):
        path = folder / f"bomb-{n}.warc.gz"
        path.write_bytes(b"".join(members))
        paths[name] = path
    return paths


def vm_hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_child(tree: Path, warc: Path, work: Path, curate: bool, limit_mb: int) -> dict:
    """Read `warc` with the code of `tree` in a child; its peak RSS, wall time and last output line."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    if curate:
        cmd = [sys.executable, "-m", "llm_assets", "curate", "--warc", str(warc), "--out", str(work / "lake"),
               "--profile", "smoke"]
    else:
        cmd = [sys.executable, "-c", READER, str(warc), str(work / "raw.parquet")]
    log = work / "output.txt"
    started = time.perf_counter()
    with open(log, "wb") as out:
        child = subprocess.Popen(cmd, cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT)
    peak_kb, killed = 0, False
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        peak_kb = max(peak_kb, vm_hwm_kb(child.pid))
        if peak_kb > limit_mb * 1024 and not killed:
            child.kill()
            killed = True
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    peak_kb = max(peak_kb, usage.ru_maxrss)
    lines = log.read_text(errors="replace").strip().splitlines()
    last = lines[-1] if lines else ""
    return {"peak_mb": peak_kb / 1024, "seconds": seconds, "rc": child.returncode,
            "killed": killed, "result": last[:150]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", type=Path, help="a checkout of the committed code to compare with")
    ap.add_argument("--gib", type=int, default=1)
    ap.add_argument("--big", action="store_true", help="add the 4 MB-compressed (4 GiB) member")
    ap.add_argument("--curate", action="store_true", help="run `python -m llm_assets curate` instead of the reader")
    ap.add_argument("--rss-limit-mb", type=int, default=8000)
    args = ap.parse_args()
    trees = ([("before", args.before)] if args.before else []) + [("after", REPO)]
    with tempfile.TemporaryDirectory(prefix="bombs-") as tmp:
        cases = build_cases(Path(tmp), args.gib, args.big)
        mode = "curate" if args.curate else "crawl_to_parquet"
        print(f"{mode}, max_body_bytes 10 MiB; RSS limit {args.rss_limit_mb} MB\n")
        print(f"{'case':<44} {'file':>8} {'tree':<7} {'peak RSS':>10} {'wall':>8}  result")
        for name, warc in cases.items():
            for label, tree in trees:
                work = Path(tempfile.mkdtemp(dir=tmp))
                r = run_child(tree, warc, work, args.curate, args.rss_limit_mb)
                peak = f">{args.rss_limit_mb} MB" if r["killed"] else f"{r['peak_mb']:.0f} MB"
                result = "killed at the RSS limit" if r["killed"] else f"rc={r['rc']} {r['result']}"
                print(f"{name:<44} {warc.stat().st_size / 1e6:>6.2f}MB {label:<7} {peak:>10} "
                      f"{r['seconds']:>7.1f}s  {result}", flush=True)


if __name__ == "__main__":
    main()
