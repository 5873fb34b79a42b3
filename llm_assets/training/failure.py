"""A failed training run's one line for its launcher: the cause named (a full disk, and which folder), and
delivered when the disk is full.

On a full disk a new file gets no block, so a program that writes its error file only when it fails leaves
an empty one. The launching rank therefore reserves the file's blocks when it starts (`reserve_error_file`);
`write_error` writes the line into them and renames the file into place, and when even that fails it
leaves no file at all (never an empty one), so the launcher names the full disk itself (`reported_failure`).
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from llm_assets.training import error_path

RESERVED_BYTES = 4096
# under this much free space a folder counts as full: the write that failed was larger than what is left
LOW_SPACE_BYTES = 1 << 20
NO_SPACE = "No space left on device"


def reserve_path(config_path: str | os.PathLike) -> Path:
    path = error_path(config_path)
    return path.with_name(path.name + ".reserve")


def reserve_error_file(config_path: str | os.PathLike) -> bool:
    """Claim RESERVED_BYTES of real blocks for the error line; False when the disk is already too full."""
    path = reserve_path(config_path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(fd, 0, RESERVED_BYTES)
            elif os.write(fd, b"\0" * RESERVED_BYTES) != RESERVED_BYTES:
                raise OSError(errno.ENOSPC, NO_SPACE)
        finally:
            os.close(fd)
        return True
    except OSError:
        path.unlink(missing_ok=True)
        return False


def release_error_file(config_path: str | os.PathLike) -> None:
    """Give the reserved blocks back (the run succeeded)."""
    reserve_path(config_path).unlink(missing_ok=True)


def write_error(config_path: str | os.PathLike, message: str) -> bool:
    """Leave `message` as `<config>.error`, in the reserved blocks when there are some; never raises, and
    never leaves an empty file. False when it could not be written (the caller still has stderr)."""
    data = (message.strip() + "\n").encode()
    if len(data) > RESERVED_BYTES:
        data = data[:RESERVED_BYTES - 4].decode(errors="ignore").encode() + b"...\n"
    target, reserved = error_path(config_path), reserve_path(config_path)
    try:
        fd = os.open(reserved, os.O_WRONLY)
        try:
            # overwriting blocks the file already owns needs no free space
            if os.pwrite(fd, data, 0) != len(data):
                raise OSError(errno.ENOSPC, NO_SPACE)
            os.ftruncate(fd, len(data))
        finally:
            os.close(fd)
        os.replace(reserved, target)
        return True
    except OSError:
        pass
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            if os.write(fd, data) != len(data):
                raise OSError(errno.ENOSPC, NO_SPACE)
        finally:
            os.close(fd)
        return True
    except OSError:
        target.unlink(missing_ok=True)
        return False


def _chain(err: BaseException | None) -> Iterator[BaseException]:
    seen = 0
    while err is not None and seen < 20:
        yield err
        err, seen = err.__cause__ or err.__context__, seen + 1


def _free_bytes(folder: Path) -> int | None:
    """Free bytes on the filesystem of `folder` (or of its nearest existing parent)."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def disk_full_cause(err: BaseException | None, folders: Iterable[str | os.PathLike]) -> str | None:
    """`No space left on device writing <file>: <folder> has N bytes free` when `err` (or its cause) is ENOSPC or
    a folder the run writes to is (nearly) full; None otherwise. The file and its folder come from the error
    when it names them (a copy's destination first), else the fullest of `folders`."""
    chain = list(_chain(err))
    said = any((isinstance(e, OSError) and e.errno == errno.ENOSPC) or NO_SPACE in str(e) for e in chain)
    named = next((e.filename2 or e.filename for e in chain if isinstance(e, OSError) and e.errno == errno.ENOSPC
                  and (e.filename2 or e.filename)), None)
    candidates = [Path(named).parent] if named else [Path(f) for f in folders]
    spaces = [(free, folder) for folder in candidates if (free := _free_bytes(folder)) is not None]
    if not spaces:
        return NO_SPACE if said else None
    free, folder = min(spaces, key=lambda space: space[0])
    if not said and free >= LOW_SPACE_BYTES:
        return None
    writing = f" writing {named}" if named else ""
    return (f"{NO_SPACE}{writing}: {folder} has {free:,} bytes free; free space there and rerun (training "
            f"resumes from its last.ckpt)")


def failure_message(err: BaseException, folders: Iterable[str | os.PathLike]) -> str:
    """The error on one line, with a full disk named."""
    message = " ".join(str(err).split()) or type(err).__name__
    cause = disk_full_cause(err, folders)
    if cause and NO_SPACE in message:  # the message says it already: add only where
        cause = cause.split(": ", 1)[1]
    return f"{message} ({cause})" if cause else message


def reported_failure(config_path: str | os.PathLike, folders: Iterable[str | os.PathLike]) -> str | None:
    """What a launcher says after the program failed: the program's error line; when it left none (a disk
    too full to take it), the full disk; None when neither is known."""
    try:
        text = error_path(config_path).read_text(errors="replace").strip()
    except OSError:
        text = ""
    if text:
        return text
    cause = disk_full_cause(None, folders)
    return f"it left no error message in {error_path(config_path)} ({cause})" if cause else None
