"""Our own WARC framing, for damaged files: what FastWARC stops at or silently drops.

It resynchronises on the next gzip member or `WARC/1.x` line, recovers records whose Content-Length is wrong or
missing from the record's own end, reads a gzip member that breaks or ends early as far as it goes, and says
where a record ended cleanly, so that the reader can hand the file back to FastWARC there.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator

GZIP_MAGIC = b"\x1f\x8b\x08"
CHUNK = 1 << 20
MEMBER_INPUT = 1 << 16
MAX_WARC_HEADER = 1 << 20
RESYNC_WINDOW = 1 << 22  # bytes held after a record start inside a block whose Content-Length is still ahead
RECORD_START = re.compile(rb"WARC/1\.[01]\r\n")
NEXT_RECORD = re.compile(rb"\r\n\r\nWARC/1\.[01]\r\n")
CONTENT_LENGTH = re.compile(rb"\r\nContent-Length:[ \t]*([^\r\n]*)", re.I)


def frame_records(buf: Buffer, source, stray: str, keep: int | None = None) -> Iterator[tuple[str, object]]:
    """Records of one uncompressed stretch (a gzip member or a plain file) by Content-Length, leniently.

    Yields ("record", (bytes, repairs)), ("skipped", reason), ("clean_end", None) when a record ended exactly
    where its Content-Length said (a safe point to hand back to FastWARC), and ("lost", None) when a broken
    gzip member ends inside a record. Bytes that are not a record count once as `stray`. A record's block is
    kept up to `keep` bytes (None: whole); the rest is read past, not held, and the record is marked
    `WARC-Truncated` with the repair `truncated_body`, so memory stays bounded whatever a member inflates to.
    """
    broken = lambda: getattr(source, "corrupt", False)  # noqa: E731
    while True:
        buf.fill(16)
        while buf.available() and buf.data[buf.pos] in b"\r\n":
            buf.pos += 1  # blank lines between records are not data
            buf.fill(16)
        if buf.available() == 0:
            return
        if not RECORD_START.match(buf.data, buf.pos):
            found = buf.skip_to(RECORD_START, 1)
            yield ("skipped", stray) if found or not broken() else ("lost", None)
            if not found:
                return
            continue
        head_end = buf.find(b"\r\n\r\n", 0, MAX_WARC_HEADER)
        if head_end < 0:
            found = buf.skip_to(RECORD_START, 1)
            yield ("skipped", "bad_record_header") if found or not broken() else ("lost", None)
            if not found:
                return
            continue
        head = bytes(buf.data[buf.pos : buf.pos + head_end])
        m = CONTENT_LENGTH.search(head)
        value = m.group(1).strip() if m else None
        # more digits than any file has bytes is wrong, and int() refuses over 4300 digits
        declared = int(value) if value is not None and value.isdigit() and len(value) <= 18 else None
        if declared is not None and (keep is None or declared <= keep) and _ends_at(buf, head_end + 4 + declared):
            record = bytes(buf.data[buf.pos : buf.pos + head_end + 4 + declared + 4])
            buf.pos += head_end + 4 + declared + 4
            yield "record", (record, ())
            if not broken():
                yield "clean_end", None
            continue
        yield from _BlockScan(buf, head, head_end, declared, keep).outcomes(value, broken)


def _ends_at(buf: Buffer, end: int) -> bool:
    """Whether a record's block ends at `end` (relative to pos): a blank line, then a record or the end."""
    buf.fill(end + 16)
    if buf.data[buf.pos + end : buf.pos + end + 4] != b"\r\n\r\n":
        return False
    after = buf.pos + end + 4
    while after < len(buf.data) and buf.data[after] in b"\r\n":
        after += 1
    return bool(after >= len(buf.data) and buf.eof or RECORD_START.match(buf.data, after))


class _BlockScan:
    """One record's block read forward in pieces: the first `keep` bytes are kept, the rest only counted.

    The block ends at its Content-Length when a blank line and a record (or the end) follow there; else at
    the first blank line followed by a `WARC/1.x` line, or at the end of the stretch. While a Content-Length
    is still ahead, the bytes from such a line on are held (at most `RESYNC_WINDOW`) in case the length turns
    out wrong; past that window the line wins. Positions are relative to the header's closing CRLFCRLF (the
    "view"), so that an empty block followed by a record is found too.
    """

    def __init__(self, buf: Buffer, head: bytes, head_end: int, declared: int | None, keep: int | None):
        self.buf, self.head, self.keep = buf, head, keep
        buf.pos += head_end  # the view starts at the header's closing CRLFCRLF
        self.declared_end = declared + 4 if declared is not None else None
        self.kept = bytearray()
        self.seen = 0  # view bytes taken so far
        self.block = 0  # block bytes taken so far (kept or not)
        self.searched = 0  # view offset up to which there is no record start
        self.alt = -1  # view offset of the first CRLFCRLF + `WARC/1.x`

    def outcomes(self, value: bytes | None, broken) -> Iterator[tuple[str, object]]:
        buf = self.buf
        window = None if self.keep is None else RESYNC_WINDOW
        while True:
            self._search()
            end = self.declared_end
            if end is not None and (self.seen + buf.available() >= end + 16 or buf.eof):
                if _ends_at(buf, end - self.seen):
                    self._take(end)
                    buf.pos += 4
                    yield "record", self._record(None)
                    if not broken():
                        yield "clean_end", None
                    return
                self.declared_end = end = None  # the Content-Length is wrong
            if self.alt >= 0 and (end is None or window is not None and self._held() > window):
                self._take(self.alt)
                buf.pos += 4
                yield "record", self._record(_length_repair(value))
                return
            if buf.eof:
                yield from self._at_end(value, broken)
                return
            upto = self.seen + buf.available() - 16 if self.alt < 0 else self.alt
            self._take(max(self.seen, upto if end is None else min(upto, end)))
            buf.fill(buf.available() + CHUNK)

    def _search(self) -> None:
        if self.alt >= 0:
            return
        buf = self.buf
        start = buf.pos + max(0, self.searched - self.seen)
        m = NEXT_RECORD.search(buf.data, start)
        if m:
            self.alt = self.seen + m.start() - buf.pos
        else:
            self.searched = max(self.seen, self.seen + buf.available() - 16)

    def _held(self) -> int:
        return self.seen + self.buf.available() - self.alt

    def _take(self, upto: int) -> None:
        """Move the view up to offset `upto`: its block bytes go to `kept` while there is room."""
        buf = self.buf
        n = upto - self.seen
        if n <= 0:
            return
        first = max(0, 4 - self.seen)  # the header's closing CRLFCRLF is not block
        room = n if self.keep is None else max(0, self.keep - len(self.kept))
        if room > first and first < n:
            self.kept += buf.data[buf.pos + first : buf.pos + min(n, first + room)]
        self.block += max(0, n - first)
        buf.pos += n
        self.seen = upto

    def _at_end(self, value: bytes | None, broken) -> Iterator[tuple[str, object]]:
        """The stretch ends inside this block: a record when the block ends with CRLF, else lost or skipped."""
        buf = self.buf
        total = self.seen + buf.available()
        tail = bytes(buf.data[max(buf.pos + max(0, 4 - self.seen), len(buf.data) - 4) :])
        if broken() or not tail.endswith(b"\r\n"):
            buf.pos += buf.available()
            yield ("lost", None) if broken() else ("skipped", "truncated_record")
            return
        self._take(total - (4 if tail == b"\r\n\r\n" else 2))
        buf.pos += buf.available()
        yield "record", self._record(_length_repair(value))

    def _record(self, repair: str | None) -> tuple[bytes, tuple[str, ...]]:
        repairs = () if repair is None else (repair,)
        head = self.head
        if repair is not None or self.block > len(self.kept):
            head = _with_length(head, len(self.kept))
        if self.block > len(self.kept):  # cut: say so the way archivers do, and count it
            head += b"\r\nWARC-Truncated: length"
            repairs += ("truncated_body",)
        return head + b"\r\n\r\n" + bytes(self.kept) + b"\r\n\r\n", repairs


def _length_repair(value: bytes | None) -> str:
    if value is None:
        return "missing_content_length"
    return "content_length_mismatch" if value.isdigit() else "bad_content_length"


class Buffer:
    """A sliding window over a byte stream with cheap consumption from the front."""

    def __init__(self, stream, offset: int = 0):
        self.stream = stream
        self.data = bytearray()
        self.pos = 0
        self.eof = False
        self.base = offset  # absolute offset of data[0] in the stream

    def fill(self, want: int) -> None:
        while len(self.data) - self.pos < want and not self.eof:
            chunk = self.stream.read(max(CHUNK, want))
            if not chunk:
                self.eof = True
                break
            if self.pos > CHUNK:  # compact: drop consumed bytes now and then, not per record
                del self.data[: self.pos]
                self.base += self.pos
                self.pos = 0
            self.data += chunk

    def available(self) -> int:
        return len(self.data) - self.pos

    def offset(self) -> int:
        return self.base + self.pos

    def find(self, needle: bytes | re.Pattern, start: int, limit: int | None = None) -> int:
        """Index (relative to pos) of the next match at or after pos+start, reading more as needed; -1 if none."""
        while True:
            if isinstance(needle, bytes):
                i = self.data.find(needle, self.pos + start)
            else:
                m = needle.search(self.data, self.pos + start)
                i = m.start() if m else -1
            if i >= 0:
                return i - self.pos
            if self.eof or (limit is not None and self.available() > limit):
                return -1
            self.fill(self.available() + CHUNK)


    def skip_to(self, needle: bytes | re.Pattern, start: int) -> bool:
        """Move to the next match at or after pos+start, dropping what comes before it as it reads (memory stays
        bounded over any stretch without one); False, at the end, when there is none."""
        while True:
            i = self.find(needle, start, 0)
            if i >= 0:
                self.pos += i
                return True
            if self.eof:
                self.pos = len(self.data)
                return False
            drop = max(0, self.available() - 16)  # keep an overlap: a match may straddle two reads
            self.pos += drop
            start = max(0, start - drop)
            self.fill(self.available() + CHUNK)


class GzipMember:
    """One gzip member as a stream of decompressed bytes; `corrupt` is set when it breaks or ends early."""

    def __init__(self, raw: Buffer):
        self.raw = raw
        self.d = zlib.decompressobj(31)
        self.done = False
        self.corrupt = False

    def read(self, size: int = CHUNK) -> bytes:
        raw = self.raw
        while not self.done:
            raw.fill(MEMBER_INPUT)
            if raw.available() == 0:
                self.done = self.corrupt = True  # the file ends inside the member
                break
            view = bytes(raw.data[raw.pos : raw.pos + MEMBER_INPUT])
            try:
                out = self.d.decompress(view, size)
            except zlib.error:
                self.done = self.corrupt = True
                break
            # at the member's end the bytes after it are in unused_data, and also in unconsumed_tail when
            # max_length was given: count them once
            raw.pos += len(view) - len(self.d.unused_data if self.d.eof else self.d.unconsumed_tail)
            if self.d.eof:
                self.done = True
            if out:
                return out
        return b""


def _with_length(head: bytes, length: int) -> bytes:
    """The WARC header block with its Content-Length set to `length` (replaced or added)."""
    line = f"\r\nContent-Length: {length}".encode()
    if CONTENT_LENGTH.search(head):
        return CONTENT_LENGTH.sub(line, head, count=1)
    return head + line
