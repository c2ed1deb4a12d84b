"""Build the RGB benchmark data set: Fashion-MNIST items tinted and composited on coloured, textured backgrounds.

    python jobs/make_rgb_dataset.py --out data/fmnist_rgb32                      # 32 px, all 70k items
    python jobs/make_rgb_dataset.py --out data/fmnist_rgb64 --resolution 64 --max-per-class 1000
    synthgen train --config jobs/configs/fashion_mnist.yaml --set data.source=imagefolder \\
        --set data.root=data/fmnist_rgb32 --set data.channels=3 --set data.resolution=32

Reads the real Fashion-MNIST IDX files (default /usr/share/datasets/fashion-mnist, Debian's
dataset-fashion-mnist) with synthgen's own IDX reader and writes a labelled ImageFolder that anyone can
rebuild offline (the same seed gives the same bytes, given the same numpy and Pillow versions):

    OUT/train/<k>-<class>/<index>.png    RGB, --resolution px; <index> = the item's index in the IDX split
    OUT/test/<k>-<class>/<index>.png     from the t10k split (the same classes)
    OUT/dataset.json                     the options and per-class counts it was built with

Each item is resized to 70-100% of the side and placed at a random position; its intensity (x 1.4,
capped at 1) is the alpha with which a random tint, shaded by that intensity, is composited onto a
background: a solid colour, a linear gradient, stripes, checks or smooth noise, in colours whose hue is
far from the tint's, so every item stays visible. Every random choice of an item comes from (--seed,
split, index) alone: an image does not depend on --max-per-class or on the other items. Class folders
are numbered so that their sorted order is the Fashion-MNIST label order.

The set is written into a temporary folder beside OUT and moved into place at the end (os.replace), so
OUT is either complete or absent; an existing OUT is refused (exit 2) unless --overwrite is given.
"""

from __future__ import annotations

import argparse
import colorsys
import json
import os
import re
import shutil
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # run from a checkout without installing

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from synthgen.cli_args import EXIT_CODES_HELP, run_guarded  # noqa: E402
from synthgen.errors import ConfigError  # noqa: E402
from synthgen.log import get_logger, setup_logging  # noqa: E402

if TYPE_CHECKING:
    from synthgen.data import ImageData

RESOLUTIONS = (32, 64, 128)
SPLITS = ("train", "test")
SPLIT_CODE = {"train": 0, "test": 1}  # part of each item's seed
BACKGROUNDS = ("solid", "gradient", "stripes", "checks", "noise")
SCALE_RANGE = (0.7, 1.0)  # item side as a fraction of the image side
ALPHA_GAIN = 1.4  # alpha = min(1, gain * intensity): dim items (dark clothes) stay visible on busy backgrounds
MANIFEST = "dataset.json"
FORMAT_VERSION = 1  # bump when the rendering changes: the same seed then gives other bytes


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    """An RGB colour in [0, 1] from hue (wrapped), saturation and value."""
    return np.asarray(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32)  # [3]


def make_background(rng: np.random.Generator, size: int, base_hue: float) -> np.ndarray:
    """A random background of one of ``BACKGROUNDS`` in two colours near ``base_hue``.

    Returns:
        float32 [size, size, 3] in [0, 1].
    """
    kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    c1, c2 = (
        _hsv(base_hue + rng.uniform(-0.08, 0.08), rng.uniform(0.2, 0.9), rng.uniform(0.25, 0.95)) for _ in range(2)
    )
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)  # [R, R] pixel coordinates
    angle = rng.uniform(0.0, np.pi)
    along = np.cos(angle) * xx + np.sin(angle) * yy  # [R, R] coordinate across the pattern
    period = rng.uniform(size / 8.0, size / 3.0)
    if kind == "solid":
        t = np.zeros((size, size), np.float32)
    elif kind == "gradient":
        t = (along - along.min()) / max(float(along.max() - along.min()), 1e-6)
    elif kind == "stripes":
        t = (np.sin(2.0 * np.pi * along / period) > 0).astype(np.float32)
    elif kind == "checks":
        t = ((np.floor(xx / period) + np.floor(yy / period)) % 2).astype(np.float32)
    else:  # noise: smooth blotches (a small random grid, bilinearly enlarged) plus a fine grain
        cells = int(rng.integers(3, 9))
        grid = Image.fromarray(rng.random((cells, cells), dtype=np.float32))  # mode "F"
        t = np.asarray(grid.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)
        t = np.clip(t + rng.normal(0.0, 0.08, (size, size)).astype(np.float32), 0.0, 1.0)
    return c1 * (1.0 - t[..., None]) + c2 * t[..., None]  # [R, R, 3]


def render(item: np.ndarray, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Composite one gray item onto a random background.

    The random draws do not depend on the item's pixels, so the same ``rng`` state gives the same
    background, tint and placement for any item (the test renders a blank item to recover the background).

    Args:
        item: uint8 [S, S] gray item (Fashion-MNIST: 28 x 28, white item on black).
        rng: the item's generator.
        size: output side R.

    Returns:
        (uint8 [R, R, 3] RGB image, float32 [R, R] alpha of the item in [0, 1]).
    """
    base_hue = rng.uniform()
    background = make_background(rng, size, base_hue)  # [R, R, 3]
    tint = _hsv(base_hue + rng.uniform(0.3, 0.7), rng.uniform(0.5, 1.0), rng.uniform(0.55, 1.0))  # [3]
    side = int(round(size * rng.uniform(*SCALE_RANGE)))
    top, left = (int(rng.integers(0, size - side + 1)) for _ in range(2))
    small = Image.fromarray(np.ascontiguousarray(item)).resize((side, side), Image.Resampling.BILINEAR)
    intensity = np.zeros((size, size), np.float32)  # [R, R]
    intensity[top : top + side, left : left + side] = np.asarray(small, dtype=np.float32) / 255.0
    alpha = np.minimum(1.0, ALPHA_GAIN * intensity)
    a = alpha[..., None]  # [R, R, 1]
    # the intensity shades the tint too, so the item's inner detail shows where it is opaque
    fg = tint * (0.55 + 0.45 * intensity[..., None])  # [R, R, 3]
    out = background * (1.0 - a) + fg * a
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8), alpha


def item_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of one item: a function of (seed, split, index) only."""
    return np.random.default_rng([seed, SPLIT_CODE[split], index])


def class_folder(label: int, name: str) -> str:
    """``3, "Dress"`` -> ``3-dress``: numbered so that sorted folder order is label order (10 classes)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return f"{label}-{slug}"


def pick(labels: np.ndarray, num_classes: int, max_per_class: int) -> np.ndarray:
    """Indices kept: per class the first ``max_per_class`` in file order (all with 0), sorted."""
    if max_per_class <= 0:
        return np.arange(len(labels))
    keep = [np.flatnonzero(labels == k)[:max_per_class] for k in range(num_classes)]
    return np.sort(np.concatenate(keep))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The script's command line."""
    p = argparse.ArgumentParser(
        description=__doc__, epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", required=True, metavar="OUT", help="folder to create (refused if it exists)")
    p.add_argument("--resolution", type=int, choices=RESOLUTIONS, default=32, help="image side in px (default 32)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    p.add_argument(
        "--max-per-class",
        type=int,
        default=0,
        metavar="N",
        help="keep the first N items of each class in each split (default 0 = all: 6000 train, 1000 test per class)",
    )
    p.add_argument(
        "--source",
        choices=("fashion-mnist", "mnist"),
        default="fashion-mnist",
        help="IDX data set the items come from (default fashion-mnist)",
    )
    p.add_argument(
        "--source-root",
        default="",
        metavar="DIR",
        help="folder with its IDX files (default: /usr/share/datasets/<source>)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing OUT (only once the new one is complete)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def _check_out(out: str, overwrite: bool) -> None:
    """Refuse an existing OUT (unless ``overwrite`` and it is a folder).

    Raises:
        ConfigError: OUT exists and --overwrite is not given, or OUT is a file.
    """
    if os.path.isfile(out):
        raise ConfigError(f"--out {out!r} is a file; choose a folder path")
    if os.path.exists(out) and not overwrite:
        raise ConfigError(f"--out {out!r} already exists; choose another path or pass --overwrite to replace it")


def _write_split(
    tmp: str, split: str, data: ImageData, args: argparse.Namespace, folders: list[str], bar: Any
) -> list[int]:
    """Render and write the kept items of one split into ``tmp/split``; return the per-class counts."""
    keep = pick(data.labels, len(folders), args.max_per_class)
    counts = [0] * len(folders)
    for folder in folders:
        os.makedirs(os.path.join(tmp, split, folder))
    for index in keep.tolist():
        label = int(data.labels[index])
        image, _ = render(data.images[index, 0], item_rng(args.seed, split, index), args.resolution)
        Image.fromarray(image).save(os.path.join(tmp, split, folders[label], f"{index:05d}.png"), format="PNG")
        counts[label] += 1
        bar.update(1)
    return counts


def build(args: argparse.Namespace) -> int:
    """Build the data set into a temporary folder, then move it to ``args.out``.

    Raises:
        ConfigError: bad arguments or an existing OUT (exit 2). DataError: the IDX files are missing or
            invalid (exit 1).
    """
    from tqdm import tqdm

    from synthgen.config import DataConfig
    from synthgen.data import load_images

    out = os.path.abspath(args.out)
    _check_out(out, args.overwrite)
    if args.max_per_class < 0:
        raise ConfigError(f"--max-per-class {args.max_per_class} must be >= 0 (0 = all)")
    cfg = DataConfig(source=args.source, root=args.source_root, resolution=28, channels=1)
    sources = {split: load_images(cfg, split) for split in SPLITS}  # gray [N, 1, 28, 28] uint8, labels [N]
    names = sources["train"].class_names
    folders = [class_folder(k, name) for k, name in enumerate(names)]
    total = sum(len(pick(d.labels, len(names), args.max_per_class)) for d in sources.values())
    get_logger().info(f"writing {total} {args.resolution} px RGB images of {args.source} to {out}")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.tmp-", dir=os.path.dirname(out))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would become OUT's mode: give it a normal folder's
    start = time.perf_counter()
    try:
        with tqdm(
            total=total, unit="img", desc="rgb-dataset", file=sys.stderr, disable=args.no_progress, dynamic_ncols=True
        ) as bar:
            counts = {split: _write_split(tmp, split, sources[split], args, folders, bar) for split in SPLITS}
        manifest = {
            "format_version": FORMAT_VERSION,
            "source": args.source,
            "resolution": args.resolution,
            "seed": args.seed,
            "max_per_class": args.max_per_class,
            "classes": list(names),
            "folders": folders,
            "counts": counts,
        }
        with open(os.path.join(tmp, MANIFEST), "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=1)
        _move_into_place(tmp, out, args.overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    get_logger().info(
        f"wrote {out} ({total} images, {time.perf_counter() - start:.0f} s): train/ and test/ "
        f"with {len(folders)} class folders each"
    )
    return 0


def _move_into_place(tmp: str, out: str, overwrite: bool) -> None:
    """``os.replace`` the finished ``tmp`` onto ``out``; an old OUT (``overwrite``) is set aside, then deleted.

    Raises:
        ConfigError: OUT appeared meanwhile and ``overwrite`` is false.
    """
    _check_out(out, overwrite)
    old = None
    if os.path.exists(out):
        old = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.old-", dir=os.path.dirname(out))
        os.replace(out, os.path.join(old, "data"))
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: exit 0 ok, 1 runtime failure (e.g. missing IDX files), 2 usage error."""
    args = parse_args(argv)
    setup_logging()
    return run_guarded("jobs/make_rgb_dataset.py", lambda: build(args))


if __name__ == "__main__":
    sys.exit(main())
