"""Reading images robustly: any path, bytes, PIL image or numpy array in, an RGB ``PIL.Image``
out, or an :class:`~parsers.errors.ImageError` that names the input and what is wrong with it."""

from __future__ import annotations

import io
import os
import warnings
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageError

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray]

# 40 megapixels: far above any tweet photo (MNRE images are 0.5 MP), far below what makes a
# 2-core machine swap when decoded (40 MP × 3 bytes = 120 MB).
DEFAULT_MAX_PIXELS = 40_000_000

_URL_PREFIXES = ("http://", "https://", "ftp://", "data:", "s3://", "gs://")
_SOURCES = "a local path, the image bytes, a PIL image or a numpy array (H×W×3 or H×W)"


def url_error(name: str) -> ImageError:
    """The one-line error for an image given as a URL: graphie reads local images only."""
    return ImageError(f"image {name} is a URL, and graphie does not download: download it first "
                      f"(e.g. `curl -o photo.jpg URL`), then pass {_SOURCES}")


def describe_source(src: object) -> str:
    """A short human-readable name for an image source, for error messages."""
    if isinstance(src, (str, os.PathLike)):
        return repr(os.fspath(src))
    if isinstance(src, (bytes, bytearray, memoryview)):
        return f"<{len(src)} bytes>"
    if isinstance(src, Image.Image):
        return f"<PIL image {src.mode} {src.width}x{src.height}>"
    if isinstance(src, np.ndarray):
        return f"<array {'x'.join(map(str, src.shape))} {src.dtype}>"
    return f"<{type(src).__name__}>"


def load_image(src: ImageSource, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode ``src`` (a local path, encoded bytes, a PIL image or a numpy array) into an RGB image.

    A numpy array is pixels as scikit-image, OpenCV (after ``cv2.cvtColor(a, cv2.COLOR_BGR2RGB)``)
    and ``np.asarray(pil_image)`` give them: H×W×3 (RGB) or H×W×4 (RGBA), or H×W (or H×W×1)
    grey; ``uint8``, ``uint16``, ``bool`` or floats in [0, 1]. A URL is refused: graphie does not
    download.

    EXIF orientation is applied; animated images give their first frame; transparency is
    composited onto white; CMYK, palette, 16-bit and float images are converted to 8-bit
    RGB. Images with more than ``max_pixels`` pixels are refused before decoding
    (``None`` disables the check). Raises :class:`ImageError` for anything unreadable.
    """
    name = describe_source(src)
    if isinstance(src, Image.Image):
        image = src
    elif isinstance(src, np.ndarray):
        image = _from_array(src, name)
    else:
        image = _open(src, name)
    _check_size(image, name, max_pixels)
    try:
        if getattr(image, "n_frames", 1) > 1:
            image.seek(0)
        image.load()
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(f"image {name} is corrupt or truncated: {exc}") from exc
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a malformed EXIF block must not lose an otherwise good image
        pass
    return _to_rgb(image)


def _open(src: ImageSource, name: str) -> Image.Image:
    if isinstance(src, (bytes, bytearray, memoryview)):
        if len(src) == 0:
            raise ImageError("image bytes are empty (0 bytes)")
        if bytes(src[:8]).lower().startswith(tuple(p.encode() for p in _URL_PREFIXES)):
            raise url_error(repr(bytes(src[:200]).decode("utf-8", "replace")))
        stream = io.BytesIO(bytes(src))
    elif isinstance(src, (str, os.PathLike)):
        path = os.fspath(src)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if path.strip().lower().startswith(_URL_PREFIXES):
            raise url_error(name)
        if not os.path.exists(path):
            raise ImageError(f"image file {name} does not exist")
        if os.path.isdir(path):
            raise ImageError(f"image path {name} is a directory, not a file")
        if os.path.getsize(path) == 0:
            raise ImageError(f"image file {name} is empty (0 bytes)")
        stream = path
    else:
        raise ImageError(f"cannot read an image from {name}: pass {_SOURCES}")
    try:
        with warnings.catch_warnings():
            # Our own pixel limit (below) replaces PIL's warning; PIL's hard limit still raises.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(stream)
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image {name} is too large to decode safely: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{name} is not an image (format not recognised)") from exc
    except OSError as exc:
        raise ImageError(f"cannot read image {name}: {exc}") from exc


def _from_array(a: np.ndarray, name: str) -> Image.Image:
    """A PIL image of the pixels in ``a`` (see :func:`load_image` for the shapes and dtypes)."""
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[2] not in (3, 4):
        raise ImageError(f"image {name} is channels-first; pass it as H×W×C: `a.transpose(1, 2, 0)`")
    if not (a.ndim == 2 or a.ndim == 3 and a.shape[2] in (3, 4)):
        raise ImageError(f"image {name}: an array image must be H×W×3 (RGB), H×W×4 (RGBA) or H×W (grey)")
    if a.size == 0:
        raise ImageError(f"image {name} has no pixels")
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
            raise ImageError(f"image {name}: float pixels must lie in [0, 1] "
                             "(for 0-255 values pass `a.astype(np.uint8)`)")
        a = np.round(a * 255).astype(np.uint8)
    elif a.dtype == np.uint16:
        a = (a // 257).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise ImageError(f"image {name}: pixels must be uint8, uint16, bool or floats in [0, 1], not {a.dtype}")
    mode = "L" if a.ndim == 2 else "RGB" if a.shape[2] == 3 else "RGBA"
    return Image.fromarray(np.ascontiguousarray(a), mode)


def _check_size(image: Image.Image, name: str, max_pixels: int | None) -> None:
    w, h = image.size
    if w <= 0 or h <= 0:
        raise ImageError(f"image {name} has no pixels ({w}x{h})")
    if max_pixels is not None and w * h > max_pixels:
        raise ImageError(
            f"image {name} has {w}x{h} = {w * h:,} pixels, more than max_pixels={max_pixels:,} "
            "(a possible decompression bomb; raise max_pixels to accept it)"
        )


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        # PIL's convert("RGB") clips high-bit-depth values at 255 (a white image); rescale.
        a = np.asarray(image, dtype=np.float64)
        if mode == "F":
            top = 1.0 if a.size and np.nanmax(a) <= 1.0 else 255.0
        else:
            top = 65535.0 if a.size and a.max() > 255 else 255.0
        a = np.clip(np.nan_to_num(a) / top * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(a, "L").convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
