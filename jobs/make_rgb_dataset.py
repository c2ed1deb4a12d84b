"""Build an RGB benchmark data set: Fashion-MNIST items composited on coloured backgrounds by one of two recipes.

    python jobs/make_rgb_dataset.py --out data/fmnist_rgb32                      # 32 px, all 70k items, tint
    python jobs/make_rgb_dataset.py --out data/fmnist_scene32 --recipe scene     # the other recipe
    python jobs/make_rgb_dataset.py --out data/fmnist_rgb64 --resolution 64 --max-per-class 1000
    synthgen train --config jobs/configs/fashion_mnist.yaml --set data.source=imagefolder \\
        --set data.root=data/fmnist_rgb32 --set data.channels=3 --set data.resolution=32

Reads the real Fashion-MNIST IDX files (default /usr/share/datasets/fashion-mnist, Debian's
dataset-fashion-mnist) with synthgen's own IDX reader and writes a labelled ImageFolder that anyone can
rebuild offline (the same seed and recipe give the same bytes, given the same numpy and Pillow versions):

    OUT/train/<k>-<class>/<index>.png    RGB, --resolution px; <index> = the item's index in the IDX split
    OUT/test/<k>-<class>/<index>.png     from the t10k split (the same classes)
    OUT/dataset.json                     the options (recipe included) and per-class counts it was built with

Both recipes resize each item to a fraction of the side and place it at a random position.

--recipe tint (the default; the original benchmark, byte for byte): the item's intensity (x 1.4, capped
at 1) is the alpha with which one flat random tint, shaded by that intensity, is composited onto a
background: a solid colour, a linear gradient, stripes, checks or smooth noise, in colours whose hue is
far from the tint's, so every item stays visible.

--recipe scene (built differently, to check that a study is not tuned to one recipe): a photo-like
background (a base colour lit by a vertical light fall-off, a few soft coloured blobs and out-of-focus
rectangles); the item, an almost opaque cut-out of its silhouette, is coloured by a random colourful
texture (a two- or three-colour linear or radial gradient, or smooth colour noise) that its intensity
shades, in hues far from the background's and darker than a light background or lighter than a dark one
behind it, so every item stays visible; a soft drop shadow lies behind it; then the whole image gets a
random brightness, contrast and colour cast, a mild Gaussian blur and sensor noise.

Every random choice of an item comes from (--seed, split, index, and for scene the recipe) alone: an image
does not depend on --max-per-class or on the other items. Class folders are numbered so that their sorted
order is the Fashion-MNIST label order.

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
FORMAT_VERSION = 1  # bump when a recipe's rendering changes: the same seed then gives other bytes
RECIPES = ("tint", "scene")
# part of a scene item's seed, so its random stream differs from tint's; tint keeps its 3-number seed (and bytes)
RECIPE_CODE = {"scene": 1}
SCENE_SCALE_RANGE = (0.65, 0.95)  # scene: item side as a fraction of the image side
SCENE_ALPHA_RAMP = 0.12  # scene: alpha = min(1, intensity / ramp), an almost opaque cut-out of the silhouette
LIGHT_BACKGROUND = 0.55  # scene: mean luma above which the item is drawn darker than the background, else lighter


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


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of ``image`` [H, W] or [H, W, C] over H and W (edges replicated); sigma in px."""
    if sigma < 0.2:
        return image
    radius = int(np.ceil(3.0 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2).astype(np.float32)
    taps /= taps.sum()  # [2r + 1]
    out = image
    for axis in (0, 1):
        pad = [(0, 0)] * image.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="edge")
        n = out.shape[axis]
        out = sum(w * np.take(padded, np.arange(i, i + n), axis=axis) for i, w in enumerate(taps))
    return out.astype(np.float32)


def _luma(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of RGB [..., 3] in [0, 1]."""
    return rgb @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)


def _hue(rgb: np.ndarray) -> float:
    """The hue in [0, 1) of one RGB colour [3]."""
    return colorsys.rgb_to_hsv(*(float(c) for c in rgb))[0]


def make_scene_background(rng: np.random.Generator, size: int, base_hue: float) -> np.ndarray:
    """A photo-like backdrop: a lit base colour, soft blobs and out-of-focus rectangles, hues near ``base_hue``.

    Returns:
        float32 [size, size, 3] in [0, 1].
    """
    u = size / 32.0  # lengths below are given for 32 px
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)  # [R, R] pixel coordinates
    base = _hsv(base_hue, rng.uniform(0.15, 0.6), rng.uniform(0.2, 0.9))  # [3]
    light = 1.0 + rng.uniform(-0.35, 0.35) * (yy / size - 0.5)  # [R, R] light from above or below
    bg = base * light[..., None]  # [R, R, 3]
    for _ in range(int(rng.integers(3, 7))):  # soft elliptical blobs
        cy, cx = rng.uniform(-0.1, 1.1, 2) * size
        sy, sx = rng.uniform(0.1, 0.35, 2) * size
        angle = rng.uniform(0.0, np.pi)
        c, s = np.cos(angle), np.sin(angle)
        dy, dx = yy - cy, xx - cx
        ry, rx = c * dy + s * dx, -s * dy + c * dx  # [R, R] rotated offsets
        mask = np.exp(-0.5 * ((ry / sy) ** 2 + (rx / sx) ** 2)) * rng.uniform(0.5, 1.0)  # [R, R]
        colour = _hsv(base_hue + rng.uniform(-0.15, 0.15), rng.uniform(0.2, 0.8), rng.uniform(0.15, 0.95))
        bg = bg * (1.0 - mask[..., None]) + colour * mask[..., None]
    for _ in range(int(rng.integers(1, 4))):  # out-of-focus rectangles (furniture, windows, boxes)
        top, left = rng.uniform(-0.2, 0.9, 2) * size
        height, width = rng.uniform(0.15, 0.6, 2) * size
        hard = ((yy >= top) & (yy < top + height) & (xx >= left) & (xx < left + width)).astype(np.float32)
        mask = _blur(hard, rng.uniform(0.6, 2.0) * u) * rng.uniform(0.5, 1.0)  # [R, R]
        colour = _hsv(base_hue + rng.uniform(-0.15, 0.15), rng.uniform(0.2, 0.8), rng.uniform(0.15, 0.95))
        bg = bg * (1.0 - mask[..., None]) + colour * mask[..., None]
    return np.clip(_blur(bg, 0.6 * u), 0.0, 1.0).astype(np.float32)


def make_texture(rng: np.random.Generator, size: int, hue: float, light: bool) -> np.ndarray:
    """A colourful texture for the item: a 2-3 colour linear or radial gradient, or smooth colour noise.

    Its colours have hues within 0.2 of ``hue`` (on both sides, so it is colourful) and values high when
    ``light`` (for a dark background), low otherwise.

    Returns:
        float32 [size, size, 3] in [0, 1].
    """
    kind = int(rng.integers(3))  # 0 linear gradient, 1 radial gradient, 2 smooth colour noise
    palette = np.stack(
        [
            _hsv(hue + rng.uniform(-0.2, 0.2), rng.uniform(0.55, 1.0), v)
            for v in (0.85 + 0.15 * rng.uniform(size=3) if light else 0.3 + 0.2 * rng.uniform(size=3))
        ]
    )  # [3, 3] colours
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size  # [R, R] in [0, 1)
    if kind == 0:
        angle = rng.uniform(0.0, 2.0 * np.pi)
        t = np.cos(angle) * xx + np.sin(angle) * yy
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    elif kind == 1:
        cy, cx = rng.uniform(0.2, 0.8, 2)
        t = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
        t = t / max(float(t.max()), 1e-6)
    else:
        cells = int(rng.integers(2, 6))
        grid = Image.fromarray(rng.random((cells, cells), dtype=np.float32))  # mode "F"
        t = np.asarray(grid.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)
        t = np.clip((t - t.min()) / max(float(t.max() - t.min()), 1e-6), 0.0, 1.0)
    stops = 2 + int(rng.integers(2))  # colours used along t
    pos = t * (stops - 1)  # [R, R] in [0, stops - 1]
    lo = np.minimum(np.floor(pos).astype(int), stops - 2)
    frac = (pos - lo)[..., None]
    return (palette[lo] * (1.0 - frac) + palette[lo + 1] * frac).astype(np.float32)  # [R, R, 3]


def render_scene(item: np.ndarray, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The scene recipe: a textured cut-out of the item with a drop shadow on a photo-like backdrop.

    As in :func:`render`, the random draws do not depend on the item's pixels, so the same ``rng`` state
    gives the same backdrop, texture, placement, shadow offset and finish for any item (a blank item
    therefore gives the finished backdrop alone).

    Args:
        item: uint8 [S, S] gray item (Fashion-MNIST: 28 x 28, white item on black).
        rng: the item's generator (``item_rng(..., recipe="scene")``).
        size: output side R.

    Returns:
        (uint8 [R, R, 3] RGB image, float32 [R, R] alpha of the item in [0, 1]).
    """
    u = size / 32.0
    base_hue = rng.uniform()
    background = make_scene_background(rng, size, base_hue)  # [R, R, 3]
    side = int(round(size * rng.uniform(*SCENE_SCALE_RANGE)))
    top, left = (int(rng.integers(0, size - side + 1)) for _ in range(2))
    # the item's colours contrast with what lies behind it: far hue, and lighter or darker
    behind = background[top : top + side, left : left + side].reshape(-1, 3).mean(axis=0)  # [3]
    light = float(_luma(behind)) <= LIGHT_BACKGROUND
    texture = make_texture(rng, size, _hue(behind) + rng.uniform(0.35, 0.65), light)  # [R, R, 3]
    small = Image.fromarray(np.ascontiguousarray(item)).resize((side, side), Image.Resampling.BILINEAR)
    intensity = np.zeros((size, size), np.float32)  # [R, R]
    intensity[top : top + side, left : left + side] = np.asarray(small, dtype=np.float32) / 255.0
    alpha = np.minimum(1.0, intensity / SCENE_ALPHA_RAMP)  # [R, R]
    # the intensity (relative to the item's brightest pixel) shades the texture: the item's inner detail
    shade = 0.6 + 0.4 * intensity / max(float(intensity.max()), 1e-6)  # [R, R]
    fg = texture * shade[..., None]  # [R, R, 3]
    # drop shadow: the alpha, shifted away from the light, blurred, darkening the backdrop behind the item
    dy, dx = (int(round(v * u)) for v in rng.uniform(0.5, 2.5, 2) * rng.choice([-1.0, 1.0], 2))
    shifted = np.zeros_like(alpha)
    shifted[max(dy, 0) : size + min(dy, 0), max(dx, 0) : size + min(dx, 0)] = alpha[
        max(-dy, 0) : size + min(-dy, 0), max(-dx, 0) : size + min(-dx, 0)
    ]
    shadow = _blur(shifted, rng.uniform(0.8, 1.8) * u) * rng.uniform(0.35, 0.6)  # [R, R]
    a = alpha[..., None]  # [R, R, 1]
    out = background * (1.0 - shadow[..., None]) * (1.0 - a) + fg * a  # [R, R, 3]
    # the camera: brightness, contrast and colour cast of the whole image, a mild blur, sensor noise
    contrast, brightness = rng.uniform(0.8, 1.2), rng.uniform(-0.08, 0.08)
    cast = rng.uniform(0.92, 1.08, 3).astype(np.float32)  # [3]
    out = np.clip(((out - 0.5) * contrast + 0.5 + brightness) * cast, 0.0, 1.0)
    out = _blur(out, rng.uniform(0.0, 0.6) * u)
    out = out + rng.normal(0.0, rng.uniform(0.005, 0.025), out.shape).astype(np.float32)
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8), alpha


RENDERERS = {"tint": render, "scene": render_scene}


def item_rng(seed: int, split: str, index: int, recipe: str = "tint") -> np.random.Generator:
    """The generator of one item: a function of (seed, split, index, recipe) only.

    tint's seed is ``[seed, split, index]`` (as before there were recipes, so its bytes are unchanged);
    scene appends its recipe code, which gives it an unrelated stream.
    """
    if recipe == "tint":
        return np.random.default_rng([seed, SPLIT_CODE[split], index])
    return np.random.default_rng([seed, SPLIT_CODE[split], index, RECIPE_CODE[recipe]])


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
        "--recipe",
        choices=RECIPES,
        default="tint",
        help="how items are coloured and composited (default tint): tint = one flat tint on a solid, "
        "gradient, striped, checked or noisy background (the original set, byte for byte); scene = a "
        "textured item with a drop shadow on a photo-like backdrop of soft blobs and rectangles, then "
        "random brightness/contrast, blur and noise (see above)",
    )
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
        rng = item_rng(args.seed, split, index, args.recipe)
        image, _ = RENDERERS[args.recipe](data.images[index, 0], rng, args.resolution)
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
    get_logger().info(f"writing {total} {args.resolution} px RGB images of {args.source} ({args.recipe}) to {out}")
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
            "recipe": args.recipe,
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
