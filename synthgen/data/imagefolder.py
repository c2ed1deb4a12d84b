"""``imagefolder`` source: one subfolder per class, like torchvision's ImageFolder.

Layout (class names = sorted subfolder names; files inside a class folder may sit in nested folders):

    root/<class>/<image>                      whole root = split "train"; split "test" is an error
    root/train/<class>/..., root/test/<class>/...   both splits (the two must have the same classes)

Every image is decoded fully (a truncated file fails here, not mid-training), its first frame taken
(GIF/WEBP animations), converted to ``data.channels`` (1: ITU-R 601 luma, 3: RGB), its shorter side
resized to ``data.resolution`` (bilinear, antialiased) and center-cropped to a square.
Transparent pixels (RGBA, LA, PA, palette with transparency) are composited on **white**, the way
viewers and browsers show them. 16/32-bit gray (I;16, I) is scaled from 0..65535 to 0..255; float (F)
is clipped to 0..255. Hidden files/folders (leading ".") and other extensions are ignored.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from synthgen.config import DataConfig
from synthgen.data.base import ImageData, register_source
from synthgen.errors import ConfigError, DataError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
PARALLEL_MIN_FILES = 64  # below this a thread pool costs more than it saves
MAX_THREADS = 8  # PIL releases the GIL while decoding, so threads scale with cores
BACKGROUND = 255  # white: the backdrop that transparent pixels are composited on


def _visible(name: str) -> bool:
    return not name.startswith(".")


def _class_names(folder: str) -> tuple[str, ...]:
    """Sorted names of the visible subfolders of ``folder``."""
    return tuple(sorted(e.name for e in os.scandir(folder) if e.is_dir() and _visible(e.name)))


def _split_dir(root: str, split: str) -> str:
    """The folder holding the class subfolders of ``split``.

    Raises:
        DataError: missing root; only one of train/ and test/; split "test" without a test/ folder.
    """
    if not os.path.isdir(root):
        raise DataError(
            f"imagefolder root {root!r} does not exist or is not a folder; set data.root to a "
            f"folder holding one subfolder of images per class"
        )
    has = {s: os.path.isdir(os.path.join(root, s)) for s in ("train", "test")}
    if has["train"] and has["test"]:
        train, test = (_class_names(os.path.join(root, s)) for s in ("train", "test"))
        if train != test:
            raise DataError(
                f"imagefolder {root!r}: train/ and test/ have different class folders "
                f"(only in train: {sorted(set(train) - set(test))}, only in test: "
                f"{sorted(set(test) - set(train))}); give both the same class subfolders"
            )
        return os.path.join(root, split)
    if has["train"] or has["test"]:
        present, absent = ("train", "test") if has["train"] else ("test", "train")
        raise DataError(
            f"imagefolder root {root!r} has a {present}/ folder but no {absent}/ folder; add "
            f"{os.path.join(root, absent)!r} (with the same class subfolders) or move the "
            f"class folders up into {root!r}"
        )
    if split == "test":
        raise DataError(
            f"imagefolder root {root!r} has no test split: it holds class folders directly, "
            f"which form the train split. To evaluate on held-out images, add "
            f"{os.path.join(root, 'train')!r} and {os.path.join(root, 'test')!r}, each with one "
            f"subfolder per class"
        )
    return root


def _class_files(split_dir: str) -> tuple[tuple[str, ...], list[tuple[str, int]]]:
    """Sorted class names and (path, label) of every image file, in a deterministic order.

    Raises:
        DataError: no class subfolders; a class folder without image files.
    """
    classes = _class_names(split_dir)
    if not classes:
        raise DataError(
            f"{split_dir!r} has no class subfolders; put each class's images in its own "
            f"subfolder, e.g. {os.path.join(split_dir, 'cat', '0001.png')!r}"
        )
    files: list[tuple[str, int]] = []
    for label, name in enumerate(classes):
        class_dir = os.path.join(split_dir, name)
        found = []
        for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if _visible(d))  # prune hidden, walk in order
            found.extend(
                os.path.join(dirpath, f)
                for f in sorted(filenames)
                if _visible(f) and f.lower().endswith(IMAGE_EXTENSIONS)
            )
        if not found:
            raise DataError(
                f"class folder {class_dir!r} holds no image files ({', '.join(IMAGE_EXTENSIONS)}); "
                f"add images to it or remove the folder"
            )
        files.extend((path, label) for path in found)
    return classes, files


def listed_files(root: str, split: str, skipped: tuple[str, ...] | list[str] = ()) -> list[str]:
    """The image files the loader reads for ``split`` under ``root``, in its order (the order of the images it
    returns), without the ``skipped`` ones it could not decode: what names or keys an image by its file.

    Raises:
        DataError: see ``_split_dir`` and ``_class_files``.
    """
    dropped = set(skipped)
    _, files = _class_files(_split_dir(os.path.abspath(os.path.expanduser(root)), split))
    return [path for path, _ in files if path not in dropped]


def _to_mode(img: Image.Image, channels: int) -> Image.Image:
    """Convert any PIL mode to "L" (channels 1) or "RGB" (channels 3), flattening alpha onto white."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(img).astype(np.float64) / 257.0  # 0..65535 -> 0..255
        img = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))
    elif img.mode == "F":
        img = Image.fromarray(np.clip(np.rint(np.asarray(img)), 0, 255).astype(np.uint8))
    elif img.mode == "P" or img.mode == "PA":
        img = img.convert("RGBA")  # resolves the palette and its transparency entry
    elif img.mode not in ("L", "RGB", "RGBA", "LA"):
        img = img.convert("RGB")  # 1, CMYK, YCbCr, LAB, HSV, RGBX, ...
    if img.mode in ("RGBA", "LA"):
        img = _flatten_alpha(img)
    return img.convert("L" if channels == 1 else "RGB")


def _flatten_alpha(img: Image.Image) -> Image.Image:
    """Composite an RGBA / LA image on the white backdrop; returns RGB / L."""
    arr = np.asarray(img).astype(np.float32)  # [H, W, 4] or [H, W, 2]
    alpha = arr[..., -1:] / 255.0  # [H, W, 1]
    color = arr[..., :-1] * alpha + BACKGROUND * (1.0 - alpha)  # [H, W, 3] or [H, W, 1]
    color = np.clip(np.rint(color), 0, 255).astype(np.uint8)
    return Image.fromarray(color[..., 0]) if img.mode == "LA" else Image.fromarray(color)


def _resize_crop(img: Image.Image, resolution: int) -> Image.Image:
    """Shorter side -> ``resolution`` (bilinear, antialiased), then a centered square crop."""
    w, h = img.size
    scale = resolution / min(w, h)
    new_w, new_h = max(resolution, round(w * scale)), max(resolution, round(h * scale))
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
    left, top = int(round((new_w - resolution) / 2.0)), int(round((new_h - resolution) / 2.0))
    return img.crop((left, top, left + resolution, top + resolution))


def decode_image(path: str, resolution: int, channels: int) -> np.ndarray:
    """Decode, convert, resize and crop one image file.

    Args:
        path: image file.
        resolution: output side R.
        channels: 1 or 3.

    Returns:
        uint8 [C, R, R].

    Raises:
        Exception: whatever PIL raises for an unreadable or truncated file (mostly OSError).
    """
    with Image.open(path) as img:
        if img.format == "JPEG":
            img.draft(None, (resolution, resolution))  # decode at a reduced scale >= R: much faster
        img.load()  # full decode: raises on truncated / corrupt data
        out = _resize_crop(_to_mode(img, channels), resolution)
    arr = np.asarray(out, dtype=np.uint8)  # [R, R] or [R, R, 3]
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)  # [C, R, R]


def _decode_or_error(item: tuple[str, int], resolution: int, channels: int) -> np.ndarray | Exception:
    try:
        return decode_image(item[0], resolution, channels)
    except MemoryError:
        raise
    except Exception as exc:  # corrupt files make PIL raise OSError, SyntaxError, struct.error, ...
        return exc


@register_source("imagefolder")
def load_imagefolder(cfg: DataConfig, split: str) -> ImageData:
    """Load one split of an image folder at ``cfg.resolution`` / ``cfg.channels``.

    Raises:
        ConfigError: ``data.root`` is empty.
        DataError: missing root, no class folders, an empty class folder, no images, or an unreadable
            file (unless ``cfg.skip_bad_files``: then it is skipped, listed in ``skipped_files`` and
            counted in a warning).
    """
    if not cfg.root:
        raise ConfigError("data.source=imagefolder needs data.root: a folder with one subfolder per class")
    root = os.path.abspath(os.path.expanduser(cfg.root))
    split_dir = _split_dir(root, split)
    classes, files = _class_files(split_dir)

    def work(item: tuple[str, int]) -> np.ndarray | Exception:
        return _decode_or_error(item, cfg.resolution, cfg.channels)

    if len(files) >= PARALLEL_MIN_FILES:
        with ThreadPoolExecutor(max_workers=min(MAX_THREADS, os.cpu_count() or 1)) as pool:
            results = list(pool.map(work, files))  # map keeps file order: deterministic output
    else:
        results = [work(item) for item in files]

    images, labels, skipped = [], [], []
    for (path, label), result in zip(files, results):
        if isinstance(result, Exception):
            if not cfg.skip_bad_files:
                raise DataError(
                    f"cannot read image {path!r} ({type(result).__name__}: {result}); delete or "
                    f"replace the file, or set data.skip_bad_files=true to skip unreadable "
                    f"files"
                ) from result
            skipped.append(path)
            continue
        images.append(result)
        labels.append(label)
    if skipped:
        log.warning(
            "imagefolder %s: skipped %d unreadable file(s) (data.skip_bad_files=true), e.g. %s",
            split_dir,
            len(skipped),
            skipped[0],
        )
    if not images:
        raise DataError(
            f"no readable images in {split_dir!r} ({len(skipped)} unreadable skipped); add valid image files"
        )
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(classes))
    if (counts == 0).any():
        empty = [os.path.join(split_dir, classes[i]) for i in np.flatnonzero(counts == 0)]
        raise DataError(
            f"class folder(s) {empty} hold no readable images (all skipped as unreadable); "
            f"add valid images or remove the folder(s)"
        )
    return ImageData(
        name="imagefolder",
        images=np.stack(images),  # [N, C, R, R] uint8
        labels=np.asarray(labels, dtype=np.int64),  # [N]
        class_names=classes,
        skipped_files=tuple(skipped),
    )
