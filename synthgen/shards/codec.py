"""PNG bytes <-> uint8 images, with fixed settings so equal pixels always give equal bytes."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

from synthgen.errors import ShardError
from synthgen.shards.layout import RERUN

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PIL_BLOCK = 65536  # Pillow's ImageFile.MAXBLOCK: the most compressed bytes one IDAT chunk gets from its encoder


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type + data."""
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(tag)))


_PNG_END = _png_chunk(b"IEND", b"")


def encode_png(image: np.ndarray, compress_level: int = 6) -> bytes:
    """Encode one uint8 image [C, H, W] (C = 1 -> mode L, C = 3 -> RGB) as PNG (``encode_batch`` of one).

    Raises:
        ValueError: not uint8 [C, H, W] with C in (1, 3) (a bug upstream).
    """
    if image.ndim != 3:
        raise ValueError(f"expected uint8 [C, H, W] with C in (1, 3), got {image.dtype} {image.shape}")
    return encode_batch(image[None], compress_level)[0]


def encode_batch(images: np.ndarray, compress_level: int = 6) -> list[bytes]:
    """Encode uint8 [N, C, H, W] (C = 1 -> mode L, C = 3 -> RGB) into N PNG byte strings.

    The bytes are exactly those of ``PIL.Image.save(format="PNG", compress_level=..., optimize=False)``: Pillow's
    own zlib encoder (adaptive row filters) makes the image data, and the fixed chunks around it are built once
    per batch. Going through ``Image.save`` per image spent more time in its Python plugin code than in zlib
    (benchmarks/README.md, "PNG encoding"). No time chunk and no optimize pass: same pixels -> same bytes.

    Raises:
        ValueError: not uint8 [N, C, H, W] with C in (1, 3) (a bug upstream).
    """
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected uint8 [N, C, H, W] with C in (1, 3), got {images.dtype} {images.shape}")
    _, c, h, w = images.shape
    mode = "L" if c == 1 else "RGB"
    header = _PNG_SIGNATURE + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0 if c == 1 else 2, 0, 0, 0))
    pixels = np.ascontiguousarray(images[:, 0] if c == 1 else images.transpose(0, 2, 3, 1))  # [N, H, W(, 3)]
    block = max(_PIL_BLOCK, w * 4)  # as ImageFile._save sizes it, so the IDAT chunks split where Pillow's do
    return [header + _image_data(pixels[i], mode, compress_level, block) + _PNG_END for i in range(len(pixels))]


def _image_data(pixels: np.ndarray, mode: str, compress_level: int, block: int) -> bytes:
    """The IDAT chunks of one contiguous [H, W(, 3)] image, from Pillow's zip encoder (what PngImagePlugin uses)."""
    h, w = pixels.shape[:2]
    image = Image.frombuffer(mode, (w, h), pixels, "raw", mode, 0, 1)  # shares the array's memory
    # (mode, rawmode, optimize, compress_level, compress_type, dictionary): PngImagePlugin's encoder config
    encoder = Image.core.zip_encoder(mode, mode, False, compress_level, -1, b"")
    try:
        encoder.setimage(image.im, (0, 0, w, h))
        chunks = []
        while True:
            _, status, data = encoder.encode(block)
            chunks.append(_png_chunk(b"IDAT", data))
            if status < 0:
                raise OSError(f"PNG encoder error {status}")
            if status:
                return b"".join(chunks)
    finally:
        encoder.cleanup()


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
