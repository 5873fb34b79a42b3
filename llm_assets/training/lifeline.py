"""A worker process that dies with the process that launched it.

A training program launched by a Dagster step (or a build's worker process) must not outlive a parent
killed with SIGKILL: an orphan keeps the CPU/GPU busy and its run keeps holding its pool slot. Two guards:
on Linux the kernel's parent-death signal (`prctl(PR_SET_PDEATHSIG)`), and everywhere a watchdog thread
that exits when the parent pid changes (the orphan is re-parented). Both are no-ops where unsupported.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

PARENT_ENV = "LLM_ASSETS_PARENT_PID"  # the launcher's pid, so a child can tell its parent died before it started
PR_SET_PDEATHSIG = 1
ORPHAN_EXIT_CODE = 137


def _exit_orphaned(parent: int, who: str) -> None:
    print(f"{who}: parent process {parent} is gone; exiting (last.ckpt keeps the progress)",
          file=sys.stderr, flush=True)
    os._exit(ORPHAN_EXIT_CODE)


def _set_parent_death_signal(signum: int) -> bool:
    """Ask the Linux kernel to send `signum` to this process when its parent thread exits."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent(expected_parent: int | None = None, poll_seconds: float = 1.0,
                    who: str = "llm_assets") -> int:
    """Make this process exit when its parent does; returns the parent pid watched.

    `expected_parent` (default: $LLM_ASSETS_PARENT_PID, else the current parent) guards the start-up race:
    a parent that died before this call left us re-parented already, and we exit at once. This process's
    own pid goes into $LLM_ASSETS_PARENT_PID for its children (e.g. DDP ranks it launches).
    """
    if expected_parent is None:
        from_env = os.environ.get(PARENT_ENV, "")
        expected_parent = int(from_env) if from_env.isdigit() else os.getppid()
    os.environ[PARENT_ENV] = str(os.getpid())
    if os.getppid() != expected_parent:
        _exit_orphaned(expected_parent, who)
    _set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != expected_parent:  # the parent died between the check and prctl
        _exit_orphaned(expected_parent, who)

    def watch() -> None:
        while True:
            time.sleep(poll_seconds)
            if os.getppid() != expected_parent:
                _exit_orphaned(expected_parent, who)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()
    return expected_parent


def launcher_env() -> dict[str, str]:
    """The environment a launcher gives its child so the child can check it was not orphaned already."""
    return {PARENT_ENV: str(os.getpid())}


def process_start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux /proc), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the command name in parentheses may hold spaces


def process_alive(pid: int, start_time: str | None = None) -> bool:
    """Whether process `pid` still runs (a zombie or a reused pid with another start time does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS, Windows): the signal check is all there is
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return False
    return not start_time or fields[19] == start_time
