"""PNG encoding per image: synthgen's ``encode_batch`` against Pillow's ``Image.save``, which makes the same bytes
(numbers, not asserts; the bytes are compared).

    python benchmarks/bench_png_encode.py                  # 512 images per size, 5 rounds, about 20 s
    python benchmarks/bench_png_encode.py --smoke-test     # 32 images, 1 round
    python benchmarks/bench_png_encode.py --sizes 32,256 --level 1

Every sampled image is PNG-encoded once, in the fleet's encode tasks or the actors (CPU), whatever the generator
runs on; on a GPU node that encode is what the CPUs spend their time on. The images are real: Fashion-MNIST's
test items (``/usr/share/datasets/fashion-mnist``), 28 px grayscale as they are, and for each RGB size resized,
tinted by a colour per item and laid on a colour gradient. Both encoders run on the same images in the same
process, in turn, ``--rounds`` times; the best round of each counts. Prints microseconds per image, the ratio,
the mean PNG size, and whether the bytes are identical (they must be: ``encode_batch`` runs Pillow's own zlib
encoder and only builds the chunks around it itself).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from collections.abc import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # run from a checkout without installing

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from synthgen.data.idx import decode_split, resize_gray  # noqa: E402
from synthgen.shards import encode_batch  # noqa: E402

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


def pillow_save(images: np.ndarray, level: int) -> list[bytes]:
    """Each uint8 [C, H, W] image of ``images`` through ``Image.save(format="PNG")``, the way synthgen encoded
    before ``encode_batch`` built the chunks itself."""
    out = []
    for image in images:
        pixels = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)  # [H, W] or [H, W, 3]
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG", compress_level=level, optimize=False)
        out.append(buf.getvalue())
    return out


def sample_images(n: int, size: int, channels: int, seed: int = 0) -> np.ndarray:
    """uint8 [n, C, size, size]: Fashion-MNIST test items; RGB ones tinted and laid on a colour gradient."""
    items, _ = decode_split(
        os.path.join(FASHION_MNIST, "t10k-images-idx3-ubyte.gz"),
        os.path.join(FASHION_MNIST, "t10k-labels-idx1-ubyte.gz"),
    )
    gray = resize_gray(items[:n], size)  # [n, size, size]
    if channels == 1:
        return gray[:, None]
    rng = np.random.default_rng(seed)
    alpha = gray[:, None].astype(np.float32) / 255  # [n, 1, S, S]
    tint = rng.uniform(0, 255, (n, 3, 1, 1))  # [n, 3, 1, 1]
    ramp = np.linspace(0, 1, size, dtype=np.float32)[None, None, :, None]  # [1, 1, S, 1]
    background = rng.uniform(0, 255, (n, 3, 1, 1)) * (1 - ramp) + rng.uniform(0, 255, (n, 3, 1, 1)) * ramp
    return (alpha * tint + (1 - alpha) * background).round().clip(0, 255).astype(np.uint8)  # [n, 3, S, S]


def _best_us(
    encode: Callable[[np.ndarray, int], list[bytes]], images: np.ndarray, level: int, rounds: int
) -> tuple[float, list[bytes]]:
    """(best microseconds per image over ``rounds``, the PNGs) of ``encode(images, level)``."""
    best, out = float("inf"), []
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = encode(images, level)
        best = min(best, time.perf_counter() - t0)
    return best / len(images) * 1e6, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke-test", action="store_true", help="32 images per size, one round")
    parser.add_argument("--sizes", default="28,32,64,128", help="sides; 28 is grayscale, the rest RGB (default)")
    parser.add_argument("--images", type=int, default=0, help="images per size (default 512)")
    parser.add_argument("--rounds", type=int, default=0, help="rounds, the best counts (default 5)")
    parser.add_argument("--level", type=int, default=6, help="zlib level (default 6, the sampler's default)")
    args = parser.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    if not 0 <= args.level <= 9 or any(s < 1 for s in sizes):
        parser.error("--level must be in 0..9 and every size at least 1")
    n = args.images or (32 if args.smoke_test else 512)
    rounds = args.rounds or (1 if args.smoke_test else 5)
    print(f"bench_png_encode: {n} images per size, zlib level {args.level}, best of {rounds} round(s)")
    for size in sizes:
        channels = 1 if size == 28 else 3
        images = sample_images(n, size, channels)
        pil_us, pil_out = _best_us(pillow_save, images, args.level, rounds)
        ours_us, ours_out = _best_us(encode_batch, images, args.level, rounds)
        print(
            f"{size} px {'gray' if channels == 1 else 'RGB'}: Image.save {pil_us:8.1f} us/img, encode_batch "
            f"{ours_us:8.1f} us/img, ratio {pil_us / ours_us:.2f}x; mean PNG {np.mean([len(p) for p in ours_out]):.0f} "
            f"bytes; bytes identical: {'yes' if ours_out == pil_out else 'NO'}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
