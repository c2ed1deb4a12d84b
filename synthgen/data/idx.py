"""IDX sources: ``fashion-mnist`` and ``mnist`` (gzipped or raw IDX files).

Files looked for in ``data.root`` (default ``/usr/share/datasets/<name>``, where Debian's
``dataset-fashion-mnist`` puts them), then in torchvision's layout ``<root>/FashionMNIST/raw`` /
``<root>/MNIST/raw``; a raw file wins over its ``.gz`` sibling:

    train-images-idx3-ubyte[.gz]  train-labels-idx1-ubyte[.gz]   (split "train")
    t10k-images-idx3-ubyte[.gz]   t10k-labels-idx1-ubyte[.gz]    (split "test")

Resizing (the images are 28x28):
    resolution == 28       unchanged
    resolution == 28 + 4   2 px of black padding on every side (exact pixels, the LeNet-5 / DCGAN habit;
                           the background of both data sets is black)
    anything else          bilinear resize (antialiased when shrinking) with torch
``channels == 3`` repeats the gray channel. Decoded arrays are cached per process (keyed by path, size
and mtime) because training and evaluation load the same files many times.
"""

from __future__ import annotations

import functools
import gzip
import os
import zlib

import numpy as np

from synthgen.config import DataConfig
from synthgen.data.base import ImageData, register_source
from synthgen.errors import DataError

# The class names of the built-in data sets (label index -> name): the one place they are written.
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
MNIST_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))
NUM_CLASSES = 10
SPLIT_PREFIX = {"train": "train", "test": "t10k"}
UBYTE = 0x08  # IDX type code of unsigned byte data, the only one these data sets use


def _find_files(folders: list[str], split: str) -> tuple[str, str] | None:
    """Return (images path, labels path) from the first folder holding both, else None."""
    prefix = SPLIT_PREFIX[split]
    for folder in folders:
        found = []
        for stem in (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"):
            for name in (stem, stem + ".gz"):
                if os.path.isfile(os.path.join(folder, name)):
                    found.append(os.path.join(folder, name))
                    break
        if len(found) == 2:
            return found[0], found[1]
    return None


def read_idx(path: str, ndim: int) -> np.ndarray:
    """Read one unsigned-byte IDX file (gzipped if the name ends in ``.gz``).

    Args:
        path: the IDX file.
        ndim: the number of dimensions it must have (3 for images, 1 for labels).

    Returns:
        uint8 array with the file's dimensions.

    Raises:
        DataError: unreadable file, bad magic number, wrong dimensions, or a size that does not match
            the header (truncated or trailing bytes).
    """
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read IDX file {path!r} ({exc}); re-download or reinstall it") from exc
    fix = "the file is corrupt or not an IDX file; re-download or reinstall it"
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path!r}: bad IDX magic number {raw[:4].hex()!r} (expected 0000080{ndim}); {fix}")
    if raw[2] != UBYTE or raw[3] != ndim:
        raise DataError(
            f"{path!r}: IDX magic {raw[:4].hex()!r} says type 0x{raw[2]:02x} with {raw[3]} dims, "
            f"expected unsigned bytes (0x08) with {ndim} dims (magic 0000080{ndim}); {fix}"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path!r}: file ends inside the IDX header ({len(raw)} bytes); {fix}")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(raw) != expected:
        raise DataError(
            f"{path!r}: header says dims {dims} ({expected} bytes) but the file has {len(raw)} bytes "
            f"(truncated or trailing data); {fix}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


@functools.lru_cache(maxsize=4)
def _decode_cached(images_path: str, labels_path: str, _stamp: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Decode and validate one split; ``_stamp`` (sizes, mtimes) invalidates the cache on change."""
    images = read_idx(images_path, ndim=3)  # [N, H, W] uint8
    labels = read_idx(labels_path, ndim=1)  # [N] uint8
    n, h, w = images.shape
    if n == 0 or h == 0 or h != w:
        raise DataError(f"{images_path!r}: expected N square images, got dims {images.shape}; re-download it")
    if labels.shape[0] != n:
        raise DataError(
            f"{images_path!r} holds {n} images but {labels_path!r} holds {labels.shape[0]} labels; "
            f"the two files are from different splits or one is corrupt, re-download them"
        )
    bad = labels >= NUM_CLASSES  # uint8, so >= 0 already
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{labels_path!r}: label {int(labels[first])} at index {first} is outside [0, {NUM_CLASSES}) "
            f"({int(bad.sum())} such labels); the file is corrupt, re-download it"
        )
    labels64 = labels.astype(np.int64)
    images.setflags(write=False)  # shared by every caller of this process: never handed out writable
    labels64.setflags(write=False)
    return images, labels64


def decode_split(images_path: str, labels_path: str) -> tuple[np.ndarray, np.ndarray]:
    """Read-only (images uint8 [N, H, W], labels int64 [N]) of one split, cached per process.

    Raises:
        DataError: see ``read_idx``; image/label counts differ; a label is outside [0, 10).
    """
    st_i, st_l = os.stat(images_path), os.stat(labels_path)
    stamp = (st_i.st_size, st_i.st_mtime_ns, st_l.st_size, st_l.st_mtime_ns)
    return _decode_cached(os.path.abspath(images_path), os.path.abspath(labels_path), stamp)


def resize_gray(images: np.ndarray, resolution: int) -> np.ndarray:
    """Bring square gray images [N, S, S] to [N, R, R] (see the module docstring for the rule).

    Args:
        images: uint8 [N, S, S].
        resolution: target side R.

    Returns:
        uint8 [N, R, R] (a new array, never a view of ``images``).
    """
    side = images.shape[1]
    if resolution == side:
        return images.copy()
    if resolution == side + 4:
        return np.pad(images, ((0, 0), (2, 2), (2, 2)), mode="constant", constant_values=0)
    import torch  # only this path needs it; keeps `import synthgen.data` light
    import torch.nn.functional as F

    out = np.empty((images.shape[0], resolution, resolution), dtype=np.uint8)
    chunk = 8192  # bounds the float32 working set (chunk * R * R * 4 bytes)
    for start in range(0, images.shape[0], chunk):
        x = torch.from_numpy(images[start : start + chunk].astype(np.float32))[:, None]  # [n, 1, S, S]
        y = F.interpolate(
            x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=resolution < side
        )  # [n, 1, R, R]
        out[start : start + chunk] = y[:, 0].round_().clamp_(0, 255).to(torch.uint8).numpy()
    return out


def _download(name: str, root: str) -> None:
    """Fetch the IDX files with torchvision into ``<root>/<Dataset>/raw``."""
    try:
        import torchvision.datasets as tvd

        dataset_cls = tvd.FashionMNIST if name == "fashion-mnist" else tvd.MNIST
        os.makedirs(root, exist_ok=True)
        dataset_cls(root=root, train=True, download=True)
    except Exception as exc:  # network, permission and checksum failures all mean the same to the user
        raise DataError(
            f"downloading {name} into {root!r} failed ({type(exc).__name__}: {exc}); check the internet "
            f"connection and that data.root is writable, or copy the IDX files into data.root by hand"
        ) from exc


def load_idx_source(
    name: str, class_names: tuple[str, ...], default_root: str, tv_folder: str, cfg: DataConfig, split: str
) -> ImageData:
    """Load one split of an IDX data set at ``cfg.resolution`` / ``cfg.channels``.

    Raises:
        DataError: files missing (and ``cfg.download`` false, or the download failed) or invalid.
    """
    root = cfg.root or default_root
    folders = [root, os.path.join(root, tv_folder, "raw")]
    paths = _find_files(folders, split)
    if paths is None and cfg.download:
        _download(name, root)
        paths = _find_files(folders, split)
    if paths is None:
        prefix = SPLIT_PREFIX[split]
        raise DataError(
            f"{name} {split} split not found in {root!r}: expected {prefix}-images-idx3-ubyte[.gz] and "
            f"{prefix}-labels-idx1-ubyte[.gz] there (or in {folders[1]!r}). Fix: `apt-get install "
            f"dataset-fashion-mnist` (Fashion-MNIST at /usr/share/datasets/fashion-mnist), or set data.root "
            f"to a folder holding these files, or set data.download=true to fetch them (needs internet)"
        )
    images, labels = decode_split(*paths)  # read-only [N, S, S] uint8, [N] int64
    images = resize_gray(images, cfg.resolution)[:, None]  # [N, 1, R, R]
    if cfg.channels == 3:
        images = np.repeat(images, 3, axis=1)  # [N, 3, R, R]
    return ImageData(name=name, images=images, labels=labels.copy(), class_names=class_names)


@register_source("fashion-mnist")
def load_fashion_mnist(cfg: DataConfig, split: str) -> ImageData:
    """Fashion-MNIST (Zalando): 60k train / 10k test 28x28 gray clothing images, 10 classes."""
    return load_idx_source(
        "fashion-mnist", FASHION_MNIST_CLASSES, "/usr/share/datasets/fashion-mnist", "FashionMNIST", cfg, split
    )


@register_source("mnist")
def load_mnist(cfg: DataConfig, split: str) -> ImageData:
    """MNIST: 60k train / 10k test 28x28 gray handwritten digits, classes "0".."9"."""
    return load_idx_source("mnist", MNIST_CLASSES, "/usr/share/datasets/mnist", "MNIST", cfg, split)
