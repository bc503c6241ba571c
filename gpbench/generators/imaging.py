"""What the image generators share: the shipped font, PNG bytes and the pixel digest.

Both :mod:`gpbench.generators.card_art` (gp-vl) and :mod:`gpbench.generators.street_views`
(virl-vl) draw text with ``gpbench/assets/fonts/DejaVuSans-Bold.ttf`` through FreeType's basic
layout, never a system font, so glyphs cannot change with what else a machine has installed.
Their images become PNG bytes without metadata, and manifests record a digest of the decoded
pixels, which does not depend on the zlib inside pillow.
"""

from __future__ import annotations

import hashlib
import io
from functools import lru_cache
from importlib.resources import files

from PIL import Image, ImageFont

__all__ = ["FONT_RESOURCE", "PNG_COMPRESS_LEVEL", "font", "font_bytes", "pixel_sha256", "scene_png"]

FONT_RESOURCE = "assets/fonts/DejaVuSans-Bold.ttf"
"""The shipped font, relative to the ``gpbench`` package (Bitstream Vera licence)."""

PNG_COMPRESS_LEVEL = 1
"""zlib level of :func:`scene_png`, chosen by measurement (``bench/bench_render.py``: 1200x1200
scenes, pillow 13.0, zlib 1.2.13, one x86-64 core, optimize off). Level 0 encodes fastest
(~14 ms) but writes every byte (~4.2 MB per scene); level 1 takes ~19 ms for ~50 kB, 80x
smaller, and once the bytes go to a file it is the faster of the two (encode + write + fsync
~20 ms against ~23 ms); levels 2-3 cost the same for 1-2 % less, 4-9 take 33-80 ms for ~35 kB.
``optimize=True`` would only add passes. The level changes the bytes, never the pixels, so
manifests (which hash pixels) do not depend on it."""


@lru_cache(maxsize=1)
def font_bytes() -> bytes:
    """The shipped font file's bytes."""
    # Read through importlib.resources so the font is found in any install (wheel, zip, editable).
    return (files("gpbench") / FONT_RESOURCE).read_bytes()


@lru_cache(maxsize=64)
def font(size: int) -> ImageFont.FreeTypeFont:
    """The shipped font at ``size`` pixels, with FreeType's basic layout."""
    # BASIC layout: glyph placement without raqm/HarfBuzz, so it cannot vary with the machine.
    return ImageFont.truetype(io.BytesIO(font_bytes()), size, layout_engine=ImageFont.Layout.BASIC)


def clear_font_caches() -> None:
    """Forget the cached font file and sizes (for cold-start timing and tests)."""
    font.cache_clear()
    font_bytes.cache_clear()


def scene_png(image: Image.Image, *, compress_level: int = PNG_COMPRESS_LEVEL) -> bytes:
    """``image`` as PNG bytes: no metadata chunks, so equal pixels give equal bytes (per zlib).

    The default level is :data:`PNG_COMPRESS_LEVEL` (the fastest measured); ``optimize`` is off.
    Metadata that pillow would copy from ``image.info`` (ICC profile, transparency) is dropped.
    """
    if not 0 <= compress_level <= 9:
        raise ValueError(f"compress_level must be in 0..9, got {compress_level}")
    if image.info:
        image = image.copy()
        image.info.clear()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=compress_level, optimize=False)
    return buffer.getvalue()


def pixel_sha256(image: Image.Image) -> str:
    """SHA-256 hex digest of ``mode``, ``size`` and the raw pixel bytes of ``image``.

    This is what manifests record: a PNG decoded on any machine gives the same digest as the
    image it was encoded from, even where the PNG bytes differ. Palette images are expanded to
    RGB(A) first so that the digest covers colours, not palette indices.
    """
    if image.mode in ("P", "PA"):
        has_alpha = image.mode == "PA" or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    digest = hashlib.sha256()
    digest.update(f"{image.mode} {image.width}x{image.height}\n".encode("ascii"))
    digest.update(image.tobytes())
    return digest.hexdigest()
