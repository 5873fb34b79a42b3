"""Non-HTML bodies a crawler meets: a small real PDF, PNG and JPEG, built deterministically."""

from __future__ import annotations

import io
import random
import struct
import zlib


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf_document(lines: list[str]) -> bytes:
    """A one-page PDF 1.4 showing `lines` in Helvetica, with a correct cross-reference table."""
    ops = ["BT", "/F1 11 Tf", "72 740 Td"]
    for i, line in enumerate(lines):
        if i:
            ops.append("0 -15 Td")
        ops.append(f"({_pdf_escape(line.encode('ascii', 'replace').decode())}) Tj")
    ops.append("ET")
    content = "\n".join(ops).encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref_at = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref_at}\n%%EOF\n".encode()
    return bytes(out)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _gradient(rng: random.Random, width: int, height: int) -> list[bytes]:
    r0, g0, b0 = (rng.randrange(256) for _ in range(3))
    return [bytes(v for x in range(width) for v in ((r0 + 3 * x) % 256, (g0 + 5 * y) % 256, (b0 + x * y) % 256))
            for y in range(height)]


def png_image(rng: random.Random, width: int = 48, height: int = 32) -> bytes:
    """An RGB gradient as a valid PNG (filter type 0 on every row)."""
    raw = b"".join(b"\x00" + row for row in _gradient(rng, width, height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(raw, 9))
            + _png_chunk(b"IEND", b""))


def jpeg_image(rng: random.Random, width: int = 48, height: int = 32) -> bytes:
    """The same kind of gradient encoded as baseline JPEG by Pillow."""
    from PIL import Image  # Pillow ships with matplotlib, a project dependency

    image = Image.frombytes("RGB", (width, height), b"".join(_gradient(rng, width, height)))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()
