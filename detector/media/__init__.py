"""Decoding and validation of media: the one place where bytes become pixels."""

from detector.media.errors import ERROR_CODES, ErrorCode, MediaError
from detector.media.image import (
    IMAGE_FORMATS,
    DecodedImage,
    ImageLimits,
    decode_image,
    probe_image,
    sniff_image_format,
)

__all__ = [
    "ERROR_CODES",
    "IMAGE_FORMATS",
    "DecodedImage",
    "ErrorCode",
    "ImageLimits",
    "MediaError",
    "decode_image",
    "probe_image",
    "sniff_image_format",
]
