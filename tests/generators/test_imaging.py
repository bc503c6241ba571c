"""The image generators' shared pieces: the shipped font, PNG bytes without metadata, the digest."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from PIL import Image, ImageFont

from gpbench.generators import card_art, imaging, street_views
from gpbench.generators.imaging import font, font_bytes, pixel_sha256, scene_png


def test_text_uses_the_shipped_font_with_basic_layout() -> None:
    assert font(40).layout_engine == ImageFont.Layout.BASIC
    shipped = Path(imaging.__file__).parent.parent / "assets/fonts/DejaVuSans-Bold.ttf"
    assert font_bytes() == shipped.read_bytes()


def test_both_generators_clear_the_shared_font_cache() -> None:
    for clear in (card_art.clear_caches, street_views.clear_caches):
        font(40)
        clear()
        assert font.cache_info().currsize == 0 and font_bytes.cache_info().currsize == 0


def _png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return chunks


def test_png_carries_no_metadata_chunks() -> None:
    image = Image.new("RGB", (16, 8), (53, 101, 77))
    image.putpixel((3, 2), (200, 16, 46))
    data = scene_png(image)
    assert set(_png_chunks(data)) == {b"IHDR", b"IDAT", b"IEND"}
    # Metadata pillow would copy from .info is dropped, and the caller's image is untouched.
    tagged = image.copy()
    tagged.info["icc_profile"] = b"not really a profile"
    tagged.info["transparency"] = (1, 2, 3)
    assert scene_png(tagged) == data
    assert "icc_profile" in tagged.info
    with Image.open(io.BytesIO(data)) as decoded:
        assert pixel_sha256(decoded) == pixel_sha256(image)
    with pytest.raises(ValueError, match="compress_level"):
        scene_png(image, compress_level=10)


def test_pixel_hash_covers_mode_size_and_pixels() -> None:
    a = Image.new("RGB", (4, 2), (1, 2, 3))
    assert pixel_sha256(a) == pixel_sha256(a.copy())
    assert pixel_sha256(a) != pixel_sha256(Image.new("RGB", (2, 4), (1, 2, 3)))
    assert pixel_sha256(a) != pixel_sha256(a.convert("RGBA"))
    b = a.copy()
    b.putpixel((3, 1), (1, 2, 4))
    assert pixel_sha256(a) != pixel_sha256(b)
    # Palette images hash their colours, not their palette indices.
    assert pixel_sha256(a.convert("P", palette=Image.Palette.ADAPTIVE)) == pixel_sha256(a)


def test_the_generators_export_the_shared_functions() -> None:
    # Callers import scene_png and pixel_sha256 from either generator module.
    assert card_art.scene_png is street_views.scene_png is scene_png
    assert card_art.pixel_sha256 is street_views.pixel_sha256 is pixel_sha256
