"""Still-image decoding with a pixel cap (Pillow: EXIF orientation, WebP behind a .jpg name, progressive JPEG)."""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from kuzet.core.errors import InputError
from kuzet.core.i18n import Phrase
from kuzet.core.types import Image

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"})
"""File name endings treated as still images inside folders."""


def is_still_image(path: Path) -> bool:
    """True when Pillow recognises the file's content as a single still image (whatever its name)."""
    try:
        with PILImage.open(path) as im:
            return not getattr(im, "is_animated", False)
    except (UnidentifiedImageError, OSError, ValueError):
        return False


def load_image(path: Path, *, max_pixels: int) -> Image:
    """Decode an image file to RGB pixels.

    Args:
        path: The image file.
        max_pixels: Images with more pixels (width x height) are refused before decoding.

    Returns:
        RGB pixels, shape (H, W, 3), uint8, EXIF orientation applied.

    Raises:
        InputError: The file is missing, not an image, truncated, or over the pixel cap.

    """
    _existing(path)
    return _decode(path, path, max_pixels)


def load_image_and_digest(path: Path, *, max_pixels: int) -> tuple[Image, str]:
    """`load_image`, and the sha256 of exactly the bytes decoded.

    The file is read once: a file swapped between a decode and a separate hash would otherwise leave a digest that
    does not describe the pixels (what enrolment and watchlist requests store as the photo's sha256).
    """
    _existing(path)
    most = 4 * max_pixels + 2**20  # every pixel uncompressed, with an alpha channel, and room for metadata
    try:
        with path.open("rb") as f:
            data = f.read(most + 1)  # never more than that in memory
    except OSError as exc:
        raise InputError(
            Phrase("{path} cannot be read ({problem})", path=path, problem=exc.strerror or exc),
            hint="check the file's permissions",
        ) from None
    if len(data) > most:
        raise InputError(
            Phrase("{path} is larger than any image within the pixel cap ({most:,} bytes)", path=path, most=most),
            hint="shrink the image or raise ingest.max_pixels in the config",
        )
    return _decode(io.BytesIO(data), path, max_pixels), hashlib.sha256(data).hexdigest()


def _existing(path: Path) -> None:
    """Refuse a path that is not an existing file."""
    if not path.exists():
        raise InputError(Phrase("{path} does not exist", path=path), hint="check the path")
    if not path.is_file():
        raise InputError(Phrase("{path} is not a file", path=path), hint="give an image file")


def _decode(source: Path | io.BytesIO, path: Path, max_pixels: int) -> Image:
    """RGB pixels of `source` (the file at `path`, or its bytes), refused over `max_pixels`."""
    try:
        with warnings.catch_warnings():
            # The size check below replaces Pillow's decompression-bomb warning with a clear error.
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            with PILImage.open(source) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise InputError(
                        Phrase(
                            "{path} is {width}x{height} = {pixels:,} pixels, over the cap of {cap:,}",
                            path=path,
                            width=w,
                            height=h,
                            pixels=w * h,
                            cap=max_pixels,
                        ),
                        hint="shrink the image or raise ingest.max_pixels in the config",
                    )
                im.load()
                rgb = ImageOps.exif_transpose(im).convert("RGB")
    except InputError:
        raise
    except (UnidentifiedImageError, PILImage.DecompressionBombError) as exc:
        raise InputError(
            Phrase("{path} is not an image kuzet can read ({problem})", path=path, problem=exc),
            hint="use JPEG, PNG or WebP",
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(
            Phrase("{path} is damaged or truncated ({problem})", path=path, problem=exc),
            hint="re-export or re-copy the image",
        ) from None
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
