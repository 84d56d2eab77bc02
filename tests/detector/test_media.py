from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from detector.media import ImageLimits, MediaError, decode_image, sniff_image_format
from tests._media import encode, photo_like, png_bomb


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF"])
def test_decodes_every_supported_format_to_rgb(fmt: str) -> None:
    img = photo_like(0, (40, 50))
    out = decode_image(encode(img, fmt))
    assert out.pixels.shape == (40, 50, 3) and out.pixels.dtype == np.uint8
    assert out.format == fmt and (out.width, out.height) == (50, 40)
    if fmt in ("PNG", "BMP", "TIFF", "WEBP") and fmt != "WEBP":
        np.testing.assert_array_equal(out.pixels, img)


def test_grayscale_and_alpha_become_rgb() -> None:
    gray = Image.fromarray(photo_like(1, (20, 20))[..., 0])
    rgba = Image.new("RGBA", (10, 10), (255, 0, 0, 0))  # fully transparent: white
    for pil, expect in ((gray, None), (rgba, (255, 255, 255))):
        import io

        buf = io.BytesIO()
        pil.save(buf, format="PNG")
        px = decode_image(buf.getvalue()).pixels
        assert px.shape[2] == 3
        if expect:
            assert tuple(px[0, 0]) == expect


def test_exif_orientation_is_applied() -> None:
    import io

    img = Image.fromarray(photo_like(2, (30, 60)))  # 60 wide, 30 high
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif)
    out = decode_image(buf.getvalue())
    assert (out.width, out.height) == (30, 60)


def test_first_frame_of_an_animated_gif() -> None:
    import io

    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    px = decode_image(buf.getvalue()).pixels
    assert px[0, 0, 0] > 200 and px[0, 0, 2] < 50


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty"),
        (b"hello, I am text\n" * 10, "unsupported_media"),
        (png_bomb(), "too_large"),
        (encode(photo_like(3), "JPEG")[:300], "corrupt_media"),
    ],
    ids=["empty", "text", "bomb", "truncated"],
)
def test_bad_bytes_get_their_code(data: bytes, code: str) -> None:
    with pytest.raises(MediaError) as info:
        decode_image(data)
    assert info.value.code == code
    assert info.value.message


def test_unsupported_image_format_is_named() -> None:
    import io

    buf = io.BytesIO()
    Image.fromarray(photo_like(4, (16, 16))).save(buf, format="PPM")
    with pytest.raises(MediaError) as info:
        decode_image(buf.getvalue())
    assert info.value.code == "unsupported_media" and "PPM" in info.value.message


def test_byte_limit_is_checked_before_reading(tmp_path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(encode(photo_like(5), "PNG"))
    with pytest.raises(MediaError) as info:
        decode_image(path, limits=ImageLimits(max_bytes=100))
    assert info.value.code == "too_large"


def test_missing_file_is_a_media_error(tmp_path) -> None:
    with pytest.raises(MediaError):
        decode_image(tmp_path / "nope.png")


def test_a_folder_or_missing_file_gets_a_code_in_every_modality(tmp_path) -> None:
    """Images, recordings and videos read files through one place (media.files)."""
    from detector.media.audio import decode_audio
    from detector.media.video import probe_video

    for read in (decode_image, decode_audio, probe_video):
        for path, message in ((tmp_path, "is a directory"), (tmp_path / "gone", "no such file")):
            with pytest.raises(MediaError, match=message) as info:
                read(path)
            assert info.value.code == "corrupt_media"


def test_sniff_reads_content_not_extension() -> None:
    assert sniff_image_format(encode(photo_like(6), "PNG")) == "PNG"
    assert sniff_image_format(b"not an image") is None
