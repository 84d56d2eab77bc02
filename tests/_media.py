"""Helpers that write good and bad media files for tests."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def photo_like(seed: int, size: tuple[int, int] = (96, 128)) -> np.ndarray:
    """A smooth random RGB image (H, W, 3) uint8: structure at several scales, like a photo."""
    rng = np.random.default_rng(seed)
    h, w = size
    out = np.zeros((h, w, 3))
    for k in (4, 16, 64):
        small = rng.random((max(1, h // k) + 1, max(1, w // k) + 1, 3))
        out += (
            np.asarray(
                Image.fromarray((small * 255).astype(np.uint8)).resize((w, h), Image.BILINEAR)
            )
            / k
        )
    out = out / out.max() * 255
    return out.astype(np.uint8)


def encode(img: np.ndarray, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A PNG whose header claims width x height pixels (2.5 Gpx): a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def write_bad_folder(root: Path) -> dict[str, str | None]:
    """Write a mix of good and bad files; returns {relative path: expected skip code or None}."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "sub" / "deeper").mkdir(parents=True)
    good = photo_like(1)
    jpeg = encode(good, "JPEG", quality=90)
    files: dict[str, tuple[bytes, str | None]] = {
        "good.png": (encode(good, "PNG"), None),
        "sub/good.jpg": (jpeg, None),
        "sub/deeper/png_named.jpg": (encode(photo_like(2), "PNG"), None),  # wrong extension
        "no_extension": (encode(photo_like(3), "WEBP"), None),
        "frames.gif": (encode(photo_like(4), "GIF"), None),
        "photo.tiff": (encode(photo_like(5), "TIFF"), None),
        "photo.bmp": (encode(photo_like(6), "BMP"), None),
        "empty.png": (b"", "empty"),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "corrupt_media"),
        "corrupt.png": (encode(good, "PNG")[:60] + bytes(range(256)) * 4, "corrupt_media"),
        "bomb.png": (png_bomb(), "too_large"),
        "notes.jpg": (b"this is a text file, not a photograph\n" * 20, "unsupported_media"),
        "data.bin": (
            bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
            "unsupported_media",
        ),
        "thumb.png": (encode(photo_like(7, (16, 16)), "PNG"), "too_small"),
    }
    for rel, (data, _code) in files.items():
        (root / rel).write_bytes(data)
    return {rel: code for rel, (_data, code) in files.items()}
