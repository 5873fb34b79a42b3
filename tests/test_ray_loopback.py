"""A Ray cluster the project starts for itself is reachable from this machine only.

Each test starts the local cluster the way the project does (the `ray` engine of curation, the local
cluster of a Ray Train job), runs tasks on it so that workers exist, and reads every TCP socket in LISTEN
state owned by this process or any process below it (GCS, raylet, agents, workers) from /proc: each must
be bound to a loopback address, none to `0.0.0.0`, `::` or the machine's network address.
"""

from __future__ import annotations

import ipaddress
import os
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from llm_assets.engine import RayEngine, open_engine  # noqa: E402

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads sockets from /proc")

PROC = Path("/proc")
LISTEN = "0A"  # the TCP state code of a listening socket in /proc/net/tcp


def _process_tree(root: int) -> dict[int, str]:
    """`root` and every process below it, pid -> command name."""
    parents: dict[int, int] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended while we looked
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    names = {}
    for pid in tree:
        try:
            names[pid] = (PROC / str(pid) / "comm").read_text().strip()
        except OSError:
            continue
    return names


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in (PROC / str(pid) / "fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
    except OSError:
        pass
    return inodes


def _address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address as /proc/net/tcp{,6} writes it: 32-bit words, each in host (little-endian) byte order."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(words)


def _listening_sockets() -> dict[str, tuple]:
    """inode -> (address, port) of every listening TCP socket of this network namespace."""
    found = {}
    for table in ("tcp", "tcp6"):
        path = PROC / "net" / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == LISTEN:
                address, port = fields[1].split(":")
                found[fields[9]] = (_address(address), int(port, 16))
    return found


def ray_listeners(root: int | None = None) -> list[tuple[str, int, str]]:
    """(address, port, process name) of every TCP socket that `root` (this process unless given) and its
    descendants listen on."""
    listening = _listening_sockets()
    rows = []
    for pid, name in _process_tree(root or os.getpid()).items():
        for inode in _socket_inodes(pid) & listening.keys():
            address, port = listening[inode]
            rows.append((str(address), port, name))
    return sorted(set(rows))


def _loopback(text: str) -> bool:
    address = ipaddress.ip_address(text)
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 on a dual-stack socket
    return (mapped or address).is_loopback


def _observed(seconds: float = 3.0) -> list[tuple[str, int, str]]:
    """Every listener seen over a few seconds (agents open theirs while the cluster settles)."""
    seen: set = set()
    deadline = time.monotonic() + seconds
    while True:
        seen.update(ray_listeners())
        if time.monotonic() >= deadline:
            return sorted(seen)
        time.sleep(0.5)


def assert_loopback_only(listeners: list[tuple[str, int, str]]) -> None:
    names = {name for _, _, name in listeners}
    # the cluster's own servers must be among them, or this check would pass by seeing nothing
    assert {"gcs_server", "raylet"} <= names, listeners
    exposed = [row for row in listeners if not _loopback(row[0])]
    assert not exposed, f"Ray listens beyond this machine: {exposed} (all: {listeners})"


def test_a_local_cluster_of_the_ray_engine_listens_on_loopback_only(monkeypatch):
    """`curate --engine ray` with no address: every Ray process binds to 127.0.0.1 (or ::1)."""
    monkeypatch.delenv("LLM_ASSETS_RAY_ADDRESS", raising=False)
    with open_engine("ray", workers=2) as engine:
        assert engine.map(abs, [-1, -2, -3, -4]) == [1, 2, 3, 4]  # workers started and ran tasks
        listeners = _observed()
    assert_loopback_only(listeners)


def test_a_local_cluster_for_ray_train_listens_on_loopback_only(monkeypatch):
    """Training on Ray with no address starts its cluster the same way."""
    from llm_assets.training.ray_train import _connect

    monkeypatch.delenv("LLM_ASSETS_RAY_ADDRESS", raising=False)
    assert _connect(ray, None, None, 2)
    try:
        assert RayEngine(ray, 2).map(abs, [-1, -2, -3, -4]) == [1, 2, 3, 4]
        listeners = _observed()
    finally:
        ray.shutdown()
    assert_loopback_only(listeners)
