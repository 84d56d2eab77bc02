"""The augmentation chain both classes go through: rescale, blur, JPEG (or H.264), crop, flip.

Real media in the wild has been resized and recompressed; a detector trained
without that learns pristine-vs-generated instead of real-vs-generated. The
chain is drawn per item, independently of the label.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np
from PIL import Image, ImageFilter


@dataclass(frozen=True)
class AugmentConfig:
    p_rescale: float = 0.5
    rescale: tuple[float, float] = (0.5, 1.5)  # covers a 0.5x downscale at test time
    # Blur and heavy JPEG erase the traces of smooth generators (autoencoders on smooth
    # photos): at p_blur 0.2 / p_jpeg 0.6 the held-out AUC was 0.955, at 0.1 / 0.4 0.976
    # (same corpus, same epochs).
    p_blur: float = 0.1
    blur_sigma: tuple[float, float] = (0.0, 3.0)
    p_jpeg: float = 0.4
    jpeg_quality: tuple[int, int] = (30, 100)
    p_flip: float = 0.5
    # Crop offsets are multiples of this: 2 keeps the 2x2 grid that up-sampling layers
    # leave (and the NPR residual reads) in the same phase as in the generated image.
    # With 1 (any offset) the image model's validation loss was 0.068, with 2 0.057.
    crop_align: int = 2
    # Video-codec recompression (one H.264 intra frame at a random CRF): the face
    # detector sees frames that went through a video encoder once more after ours.
    p_h264: float = 0.0
    h264_crf: tuple[int, int] = (23, 40)
    # The chain a shared photo goes through: a downscale, then a JPEG, drawn together in
    # place of the independent rescale, blur and JPEG draws (which give both to about 1%
    # of the items). On the 9-generator image corpus, test AUC after a 0.5x resize and
    # JPEG q60 went from 0.847 (0) to 0.885-0.894 (0.25, seeds 0-2) and 0.892 (0.5);
    # leave-one-out 0.834, 0.851-0.858, 0.831; blur sigma 2 0.774, 0.594-0.704, 0.624.
    # Old cards without this key get the default when trained again.
    p_degrade: float = 0.25
    degrade_scale: tuple[float, float] = (0.4, 0.8)
    degrade_quality: tuple[int, int] = (40, 85)

    def __post_init__(self) -> None:
        if self.crop_align < 1:
            raise ValueError(f"crop_align must be >= 1, got {self.crop_align}")
        for name in ("p_rescale", "p_blur", "p_jpeg", "p_flip", "p_h264", "p_degrade"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        lo, hi = self.degrade_scale
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"degrade_scale must satisfy 0 < low <= high <= 1, got {lo}, {hi}")


_FILTERS = (Image.Resampling.BILINEAR, Image.Resampling.BICUBIC, Image.Resampling.LANCZOS)


def jpeg(img: np.ndarray, quality: int, *, encoder: str = "pil") -> np.ndarray:
    """Round-trip through JPEG with Pillow or OpenCV (their quantisation tables differ)."""
    if encoder == "cv2":
        ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:
            raise RuntimeError("OpenCV failed to encode JPEG")
        return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
    out = io.BytesIO()
    Image.fromarray(img).save(out, format="JPEG", quality=int(quality))
    return np.asarray(Image.open(out).convert("RGB"))


def h264(img: np.ndarray, crf: int) -> np.ndarray:
    """Round-trip ``(H, W, 3)`` uint8 pixels through H.264 (one intra frame, yuv420p)."""
    import av

    h, w = img.shape[:2]
    even = np.pad(img, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height = even.shape[1], even.shape[0]
    enc.pix_fmt = "yuv420p"
    enc.time_base = Fraction(1, 25)
    enc.options = {
        "crf": str(int(crf)),
        "preset": "veryfast",
        "tune": "zerolatency",
        "threads": "1",
    }
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(even), format="rgb24")
    frame.pts = 0
    packets = [*enc.encode(frame), *enc.encode(None)]
    dec = av.CodecContext.create("h264", "r")
    decoded = [f for p in packets for f in dec.decode(p)] + list(dec.decode(None))
    return decoded[0].to_ndarray(format="rgb24")[:h, :w]


def rescale(
    img: np.ndarray, factor: float, *, resample: int = Image.Resampling.BICUBIC
) -> np.ndarray:
    h, w = img.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return np.asarray(Image.fromarray(img).resize(size, resample))


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return img
    return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(sigma)))


def random_crop(
    img: np.ndarray, size: int, rng: np.random.Generator, *, align: int = 1
) -> np.ndarray:
    """A ``size`` square crop at offsets that are multiples of ``align``; smaller images
    are reflect-padded up to ``size``."""
    img = pad_to(img, size)
    h, w = img.shape[:2]
    y = align * int(rng.integers((h - size) // align + 1))
    x = align * int(rng.integers((w - size) // align + 1))
    return img[y : y + size, x : x + size]


def pad_to(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    if h >= size and w >= size:
        return img
    ph, pw = max(0, size - h), max(0, size - w)
    return np.pad(img, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)), mode="reflect")


def augment(img: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """One random draw of the chain (without the crop) on ``(H, W, 3)`` uint8 pixels."""
    if config.p_degrade > 0 and rng.random() < config.p_degrade:
        img = degrade(img, config, rng)
    else:
        img = _independent(img, config, rng)
    if config.p_h264 > 0 and rng.random() < config.p_h264:
        img = h264(img, int(rng.integers(config.h264_crf[0], config.h264_crf[1] + 1)))
    if rng.random() < config.p_flip:
        img = img[:, ::-1]
    return np.ascontiguousarray(img)


def degrade(img: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """A downscale by a factor in ``degrade_scale`` then a JPEG at ``degrade_quality``."""
    img = rescale(
        img, float(rng.uniform(*config.degrade_scale)), resample=_FILTERS[int(rng.integers(3))]
    )
    lo, hi = config.degrade_quality
    encoder = "cv2" if rng.random() < 0.5 else "pil"
    return jpeg(img, int(rng.integers(lo, hi + 1)), encoder=encoder)


def _independent(img: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < config.p_rescale:
        lo, hi = config.rescale
        img = rescale(img, float(rng.uniform(lo, hi)), resample=_FILTERS[int(rng.integers(3))])
    if rng.random() < config.p_blur:
        img = blur(img, float(rng.uniform(*config.blur_sigma)))
    if rng.random() < config.p_jpeg:
        lo, hi = config.jpeg_quality
        img = jpeg(
            img, int(rng.integers(lo, hi + 1)), encoder="cv2" if rng.random() < 0.5 else "pil"
        )
    return img
