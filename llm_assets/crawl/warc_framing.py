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
RECORD_START = re.compile(rb"WARC/1\.[01]\r\n")
NEXT_RECORD = re.compile(rb"\r\n\r\nWARC/1\.[01]\r\n")
CONTENT_LENGTH = re.compile(rb"\r\nContent-Length:[ \t]*([^\r\n]*)", re.I)


def frame_records(buf: Buffer, source, stray: str) -> Iterator[tuple[str, object]]:
    """Records of one uncompressed stretch (a gzip member or a plain file) by Content-Length, leniently.

    Yields ("record", (bytes, framing_repair | None)), ("skipped", reason), ("clean_end", None) when a record
    ended exactly where its Content-Length said (a safe point to hand back to FastWARC), and ("lost", None)
    when a broken gzip member ends inside a record. Bytes that are not a record count once as `stray`.
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
            nxt = buf.find(RECORD_START, 1)
            if nxt < 0:
                buf.pos += buf.available()
                yield ("lost", None) if broken() else ("skipped", stray)
                return
            yield "skipped", stray
            buf.pos += nxt
            continue
        head_end = buf.find(b"\r\n\r\n", 0, MAX_WARC_HEADER)
        if head_end < 0:
            nxt = buf.find(RECORD_START, 1)
            if broken() and nxt < 0:
                yield "lost", None
                return
            yield "skipped", "bad_record_header"
            if nxt < 0:
                buf.pos += buf.available()
                return
            buf.pos += nxt
            continue
        head = bytes(buf.data[buf.pos : buf.pos + head_end])
        m = CONTENT_LENGTH.search(head)
        value = m.group(1).strip() if m else None
        if value is not None and value.isdigit():
            end = head_end + 4 + int(value)
            buf.fill(end + 16)
            if buf.data[buf.pos + end : buf.pos + end + 4] == b"\r\n\r\n":
                after = buf.pos + end + 4
                while after < len(buf.data) and buf.data[after] in b"\r\n":
                    after += 1
                if after >= len(buf.data) and buf.eof or RECORD_START.match(buf.data, after):
                    record = bytes(buf.data[buf.pos : buf.pos + end + 4])
                    buf.pos += end + 4
                    yield "record", (record, None)
                    if not broken():
                        yield "clean_end", None
                    continue
        # the Content-Length is wrong or missing: the record ends where the next one starts, or at the end
        nxt = buf.find(NEXT_RECORD, head_end)
        if nxt >= 0:
            block = bytes(buf.data[buf.pos + head_end + 4 : buf.pos + nxt])
            advance = nxt + 4
        else:
            buf.fill(buf.available() + CHUNK)
            while not buf.eof:
                buf.fill(buf.available() + CHUNK)
            tail = bytes(buf.data[buf.pos + head_end + 4 :])
            if broken() or not tail.endswith(b"\r\n"):
                # the file (or the broken member) ends inside this record
                yield ("lost", None) if broken() else ("skipped", "truncated_record")
                buf.pos += buf.available()
                return
            block = tail[:-4] if tail.endswith(b"\r\n\r\n") else tail[:-2]
            advance = buf.available()
        if value is None:
            reason = "missing_content_length"
        elif not value.isdigit():
            reason = "bad_content_length"
        else:
            reason = "content_length_mismatch"
        record = _with_length(head, len(block)) + b"\r\n\r\n" + block + b"\r\n\r\n"
        buf.pos += advance
        yield "record", (record, reason)


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
            raw.pos += len(view) - len(self.d.unconsumed_tail) - len(self.d.unused_data)
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
