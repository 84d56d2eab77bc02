"""The one place that decodes and validates images.

Accepts PNG, JPEG, WebP, BMP, TIFF and GIF (first frame), identified by content
rather than file extension; applies EXIF orientation; returns RGB ``uint8``
arrays of shape ``(H, W, 3)``. Limits on bytes and pixels stop decompression
bombs before any pixel is decoded.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps

from detector.media.errors import MediaError
from detector.media.files import read_limited

# A truncated file must be an error, not a silently grey-padded image.
ImageFile.LOAD_TRUNCATED_IMAGES = False

IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")

# File signatures of the supported formats: a file that starts like an image but
# does not open is damaged (corrupt_media), not something else (unsupported_media).
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def _magic_format(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return next((fmt for magic, fmt in _MAGIC if data.startswith(magic)), None)


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 50 * 1024 * 1024  # 50 MiB per file
    max_pixels: int = 64 * 1024 * 1024  # 64 Mpx: above every camera, below a bomb
    min_side: int = 1


@dataclass(frozen=True)
class DecodedImage:
    pixels: np.ndarray  # (H, W, 3) uint8 RGB
    format: str  # PIL format name, e.g. "JPEG"
    width: int
    height: int
    n_bytes: int


def sniff_image_format(data: bytes) -> str | None:
    """The image format named by the content's header, or ``None`` if it is not an image."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.format if img.format in IMAGE_FORMATS else None
    except Exception:
        return None


def probe_image(
    source: bytes | str | Path, *, limits: ImageLimits | None = None
) -> tuple[str, int, int]:
    """Check what an image claims from its header alone: ``(format, width, height)``.

    Cheap (no pixel is decoded), for rejecting uploads early: ``empty``,
    ``unsupported_media`` and ``too_large`` as :func:`decode_image` raises them, and
    ``corrupt_media`` for a known signature whose header does not parse. Damage past
    the header is found by the full decode.
    """
    limits = limits or ImageLimits()
    data = read_limited(source, limits.max_bytes)
    img = _open(data)
    with img:
        return _check_header(img, limits)


def _open(data: bytes) -> Image.Image:
    """Open (parse the header of) ``data``; map every failure to a coded error."""
    try:
        with warnings.catch_warnings():
            # We check the pixel count ourselves, before decoding.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise MediaError("too_large", f"image has too many pixels ({exc})") from None
    except Exception:
        claimed = _magic_format(data)
        if claimed is not None:
            raise MediaError(
                "corrupt_media", f"the file starts like a {claimed} image but cannot be read"
            ) from None
        raise MediaError(
            "unsupported_media",
            "not a recognised image (supported: PNG, JPEG, WebP, BMP, TIFF, GIF)",
        ) from None


def _check_header(img: Image.Image, limits: ImageLimits) -> tuple[str, int, int]:
    fmt = img.format or "unknown"
    if fmt not in IMAGE_FORMATS:
        raise MediaError(
            "unsupported_media",
            f"image format {fmt} is not supported (supported: {', '.join(IMAGE_FORMATS)})",
        )
    width, height = img.size
    if width < limits.min_side or height < limits.min_side:
        raise MediaError("empty", f"image has no pixels ({width}x{height})")
    if width * height > limits.max_pixels:
        raise MediaError(
            "too_large",
            f"image is {width}x{height} = {width * height:,} pixels; "
            f"the limit is {limits.max_pixels:,}",
        )
    return fmt, width, height


def decode_image(source: bytes | str | Path, *, limits: ImageLimits | None = None) -> DecodedImage:
    """Decode ``source`` (bytes or a path) into RGB pixels, or raise :class:`MediaError`.

    Codes: ``empty`` (0 bytes), ``too_large`` (bytes or pixels over the limits),
    ``unsupported_media`` (not an image, or a format outside ``IMAGE_FORMATS``),
    ``corrupt_media`` (truncated or undecodable).
    """
    limits = limits or ImageLimits()
    data = read_limited(source, limits.max_bytes)
    img = _open(data)
    with img:
        fmt, _, _ = _check_header(img, limits)
        try:
            img.seek(0)  # GIF / multi-page TIFF: the first frame
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img.load()
                oriented = ImageOps.exif_transpose(img)
                rgb = _to_rgb(oriented)
        except MediaError:
            raise
        except Exception as exc:
            raise MediaError("corrupt_media", f"the {fmt} data is damaged ({exc})") from None
    pixels = np.asarray(rgb, dtype=np.uint8)
    return DecodedImage(
        pixels=pixels,
        format=fmt,
        width=pixels.shape[1],
        height=pixels.shape[0],
        n_bytes=len(data),
    )


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Composite transparency over white, as a viewer would show it.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = arr.max() or 1.0
        return Image.fromarray((arr / hi * 255.0).round().astype(np.uint8)).convert("RGB")
    return img.convert("RGB")
