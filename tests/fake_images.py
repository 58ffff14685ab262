"""Image files for size-limit tests: a PNG whose header claims any size, written in microseconds."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def fake_png(path: Path, width: int, height: int) -> Path:
    """A PNG whose header says ``width`` x ``height`` RGB (its pixel data is a few bytes, so decoding it
    would fail): size checks must refuse it from the header alone."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )
    return path
