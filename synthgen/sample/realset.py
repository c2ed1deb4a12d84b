"""The real set of ``synthgen sample --around``: which real images are inverted and varied, and where each came from.

``--around train`` is the checkpoint's own training data: its saved config's data section (source, root,
resolution, channels, ``max_images`` or ``class_counts`` / ``subset_seed``), split "train", i.e. exactly the
(sub)set the generator was trained on. ``--around FILE`` is a data-config YAML: DataConfig keys (flat, or under a
``data:`` section like a training config) plus an optional ``split`` key, which must be ``train`` (the
default). Refused, before anything is written, with a ConfigError naming the fix:

* the test split (``split: test``, ``--around test``, or an imagefolder ``root`` whose last folder is
  ``test``): varying evaluation images would leak them into training data;
* a real set whose class names differ from the checkpoint's, or whose image shape differs.

Image ``i`` of the real set (its ``source_id``) is the i-th image ``load_images`` returns for that config;
its ``source`` string is the file's path relative to ``root`` (imagefolder) or ``"<split>:<index>"`` with
the index into the whole split file (IDX), so a subset's images stay traceable to the original data.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthgen.config import DataConfig, from_dict, read_yaml, to_dict
from synthgen.errors import ConfigError

SPLIT_KEY = "split"  # the around YAML's optional split key (only "train" is allowed)


@dataclass(frozen=True)
class RealSet:
    """Real images to sample around, in their fixed order (index = source_id)."""

    images: np.ndarray  # uint8 [N, C, H, W]
    labels: np.ndarray  # int64 [N]
    class_names: tuple[str, ...]  # label index -> name (equal to the checkpoint's)
    sources: tuple[str, ...]  # [N] path relative to root (imagefolder) or "<split>:<index>" (IDX)
    describe: dict[
        str, Any
    ]  # kind, spec, source, root, split, max_images, subset_seed, class_counts, size, digest, data

    @property
    def digest(self) -> str:
        return str(self.describe["digest"])

    def class_images(self) -> tuple[int, ...]:
        """Real images per label index."""
        return tuple(int(c) for c in np.bincount(self.labels, minlength=len(self.class_names)))

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def around_data_config(spec: str, train_data: DataConfig) -> tuple[DataConfig, str]:
    """The DataConfig and split of ``--around`` ``spec`` ("train" or a YAML file).

    Args:
        spec: "train" or a path to a data-config YAML.
        train_data: the checkpoint's data config (its resolution / channels fill in missing keys).

    Returns:
        (DataConfig, "train").

    Raises:
        ConfigError: the test split, a test folder, unknown keys, or an unreadable file.
    """
    if spec.strip().lower() == "test":
        raise ConfigError(
            "--around test is refused: varying the test split's images would leak evaluation data "
            "into training data; use --around train or a data config of a training split"
        )
    if spec == "train":
        return train_data, "train"
    # The images must match the generator: missing resolution / channels default to the checkpoint's.
    cfg, split = data_config_file(spec, train_data.channels, train_data.resolution, "--around")
    if split != "train":
        raise ConfigError(
            f"--around {spec}: split={split!r} is refused: only the train split may be varied (the "
            "test split would leak evaluation data into training data); set split: train or drop it"
        )
    if cfg.source == "imagefolder" and os.path.basename(os.path.normpath(cfg.root or ".")) == "test":
        raise ConfigError(
            f"--around {spec}: root={cfg.root!r} is a test folder; varying test images would leak "
            "evaluation data into training data: point root at the training images (or at the "
            "folder holding train/ and test/, whose train/ is then used)"
        )
    return cfg, split


def data_config_file(spec: str, channels: int, resolution: int, flag: str) -> tuple[DataConfig, str]:
    """A data-config YAML (DataConfig keys, flat or under ``data:``) and its ``split`` (default train); missing
    ``channels`` / ``resolution`` take the given ones (the checkpoint's).

    Raises:
        ConfigError: an unreadable file or unknown keys (named with ``flag``, e.g. "--around").
    """
    raw = read_yaml(spec)
    if isinstance(raw.get("data"), dict):  # a training config: take its data section (and a top-level split)
        raw = {**raw["data"], **({SPLIT_KEY: raw[SPLIT_KEY]} if SPLIT_KEY in raw else {})}
    split = str(raw.pop(SPLIT_KEY, "train"))
    raw.setdefault("resolution", resolution)
    raw.setdefault("channels", channels)
    return from_dict(DataConfig, raw, f"{flag} {spec}"), split


def named_set(spec: str, cfg: DataConfig, split: str, check: Callable[[Any], None] = lambda full: None) -> RealSet:
    """The images of data config ``cfg``'s ``split`` (train: the subset ``load_images`` returns), each named by its
    ``source`` and indexed by its ``source_id``, with the set's digest and description.

    Args:
        spec: what the user gave (recorded in the description).
        cfg, split: the data and the split.
        check: called with the whole split (an ImageData) before subsetting: refusals that need the images.

    Raises:
        ConfigError: an invalid config, ``check``'s refusals, a subset that does not fit.
        DataError: the images cannot be read.
    """
    from synthgen.data import load_images
    from synthgen.data.subset import item_keys, subset_indices, whole_split

    cfg.validate()
    full = load_images(whole_split(cfg), split)  # the whole split, to name each image
    check(full)
    keep = np.arange(len(full.labels), dtype=np.int64)  # [N] indices into the whole split
    if split == "train":  # the same subset load_images(cfg, "train") returns (it subsets the whole split the same way)
        keys = item_keys(cfg, split, full) if cfg.index_half else None
        keep = subset_indices(full.labels, cfg, full.class_names, keys)
    images, labels = full.images[keep], full.labels[keep]  # [N, C, H, W], [N]
    names = _source_names(cfg, split, len(full), full.skipped_files)
    describe = {
        "kind": "imagefolder" if cfg.source == "imagefolder" else "idx",
        "spec": spec,
        "source": cfg.source,
        "root": cfg.root,
        "split": split,
        "max_images": cfg.max_images,
        "subset_seed": cfg.subset_seed,
        "class_counts": list(cfg.class_counts),
        "size": int(len(labels)),
        "digest": _digest(images, labels),
        "data": to_dict(cfg),
    }
    return RealSet(images, labels, tuple(full.class_names), tuple(names[k] for k in keep.tolist()), describe)


def load_real_set(spec: str, info: Any) -> RealSet:
    """Load the real set of ``--around spec`` for the checkpoint ``info`` and check it fits.

    Args:
        spec: "train" or a data-config YAML path.
        info: the checkpoint's CheckpointInfo (config, class_names, image_shape).

    Returns:
        The RealSet.

    Raises:
        ConfigError: refused split or folder, class names or image shape that differ from the checkpoint's.
        DataError: the real images cannot be read.
    """
    cfg, split = around_data_config(spec, info.config.data)

    def fits(full: Any) -> None:
        if tuple(full.class_names) != tuple(info.class_names):
            raise ConfigError(
                f"--around {spec}: the real set's classes {list(full.class_names)} differ from the "
                f"checkpoint's {list(info.class_names)}; use a data source with the same classes in the "
                "same order (imagefolder: one subfolder per class, sorted by name)"
            )
        if full.image_shape != tuple(info.image_shape):
            raise ConfigError(
                f"--around {spec}: images are {list(full.image_shape)} but the generator makes "
                f"{list(info.image_shape)}; set resolution / channels to the checkpoint's"
            )

    return named_set(spec, cfg, split, fits)


def _source_names(cfg: DataConfig, split: str, n: int, skipped: tuple[str, ...]) -> list[str]:
    """One name per image of the whole ``n``-image split, in ``load_images`` order."""
    if cfg.source != "imagefolder":
        return [f"{split}:{k}" for k in range(n)]
    from synthgen.data.imagefolder import listed_files

    root = os.path.abspath(os.path.expanduser(cfg.root))
    names = [os.path.relpath(path, root).replace(os.sep, "/") for path in listed_files(root, split, skipped)]
    if len(names) != n:  # the listing rule changed under us: never attach wrong names
        raise ConfigError(f"--around: {len(names)} files listed but {n} images loaded from {root!r}; report this bug")
    return names


def _digest(images: np.ndarray, labels: np.ndarray) -> str:
    """sha256 of the real set: its shape, labels and pixels (any change of the set changes the dataset)."""
    h = hashlib.sha256(repr((images.shape, str(images.dtype))).encode())
    h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    for lo in range(0, len(images), 4096):  # in slices: no second copy of a large set in memory
        h.update(np.ascontiguousarray(images[lo : lo + 4096]).tobytes())
    return h.hexdigest()
