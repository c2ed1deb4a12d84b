"""PNG bytes <-> uint8 images, with fixed settings so equal pixels always give equal bytes."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from synthgen.errors import ShardError
from synthgen.shards.layout import RERUN


def encode_png(image: np.ndarray, compress_level: int = 6) -> bytes:
    """Encode one uint8 image [C, H, W] (C = 1 -> mode L, C = 3 -> RGB) as PNG.

    Raises:
        ValueError: not uint8 [C, H, W] with C in (1, 3) (a bug upstream).
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected uint8 [C, H, W] with C in (1, 3), got {image.dtype} {image.shape}")
    pixels = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)  # [H, W] or [H, W, 3]
    buf = io.BytesIO()
    # No optimize pass and no time chunk: same pixels + same zlib -> same bytes.
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG", compress_level=compress_level, optimize=False)
    return buf.getvalue()


def encode_batch(images: np.ndarray, compress_level: int = 6) -> list[bytes]:
    """Encode uint8 [N, C, H, W] into N PNG byte strings."""
    return [encode_png(img, compress_level) for img in images]


def decode_png(data: bytes, image_shape: tuple[int, int, int], where: str = "") -> Image.Image:
    """Decode PNG bytes into a PIL image of mode "L" (C=1) or "RGB" (C=3), checking its size.

    Raises:
        ShardError: the bytes are not a readable image or have the wrong size.
    """
    c, h, w = image_shape
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception as e:  # PIL raises several unrelated types for corrupt data
        raise ShardError(f"{where}: unreadable PNG ({e}); the shard is corrupted; {RERUN}") from e
    if img.size != (w, h):
        raise ShardError(f"{where}: image is {img.size[0]}x{img.size[1]}, manifest says {w}x{h}; {RERUN}")
    mode = "L" if c == 1 else "RGB"
    return img if img.mode == mode else img.convert(mode)


def png_problem(data: bytes, image_shape: tuple[int, int, int]) -> str | None:
    """None if ``data`` is a PNG of exactly ``image_shape`` (C, H, W) and its mode, else what is wrong.

    Stricter than ``decode_png`` (which converts modes): ``synthgen verify`` uses it.
    """
    c, h, w = image_shape
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            mode, size = img.mode, img.size
    except Exception as exc:  # PIL raises many types for broken images
        return f"not a decodable PNG ({exc})"
    want_mode = "L" if c == 1 else "RGB"
    if mode != want_mode or size != (w, h):
        return f"image is {mode} {size[0]}x{size[1]}, expected {want_mode} {w}x{h}"
    return None


def pil_to_chw(img: Image.Image) -> np.ndarray:
    """PIL image -> uint8 [C, H, W] numpy array (a writable copy: torch needs one)."""
    arr = np.array(img, dtype=np.uint8)  # [H, W] or [H, W, C]
    return arr[None] if arr.ndim == 2 else np.ascontiguousarray(arr.transpose(2, 0, 1))
