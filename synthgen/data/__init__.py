"""Real-image sources behind one call: ``load_images(DataConfig, split) -> ImageData``.

Registered sources: ``fashion-mnist`` and ``mnist`` (IDX files, see ``idx.py``) and ``imagefolder``
(one subfolder per class, see ``imagefolder.py``). Importing this package stays light (numpy + PIL);
torch is imported only where a function needs it (``torch_dataset.py``, bilinear IDX resizing).
"""

from __future__ import annotations

import numpy as np

from synthgen.config import DataConfig
from synthgen.data import idx as _idx  # noqa: F401  (registers fashion-mnist, mnist)
from synthgen.data import imagefolder as _imagefolder  # noqa: F401  (registers imagefolder)
from synthgen.data.base import SOURCES, ImageData, get_source, register_source
from synthgen.data.subset import item_keys, names_a_subset, stratified_subset, subset_indices, whole_split
from synthgen.errors import ConfigError, DataError

SPLITS = ("train", "test")

__all__ = [
    "SOURCES",
    "SPLITS",
    "ImageData",
    "get_source",
    "load_images",
    "register_source",
    "stratified_subset",
    "whole_split",
]


def load_images(cfg: DataConfig, split: str = "train") -> ImageData:
    """Load real images of ``split`` from the source named by ``cfg.source``.

    For split "train" with ``cfg.max_images > 0`` (a class-stratified subset of that many images) or
    ``cfg.class_counts`` (exactly that many images per class), the reproducible subset picked by
    ``cfg.subset_seed`` is returned (``synthgen.data.subset``); the test split is always whole.

    Args:
        cfg: data config (source, root, resolution, channels, max_images, class_counts, subset_seed, ...).
        split: "train" or "test".

    Returns:
        ImageData with images uint8 [N, cfg.channels, cfg.resolution, cfg.resolution], labels int64 [N].

    Raises:
        ConfigError: unknown split or source, bad channels/resolution/max_images/class_counts, ``max_images``
            larger than the training set (the message names its size), or class_counts that do not fit it.
        DataError: the source's files are missing, unreadable or inconsistent.
    """
    if split not in SPLITS:
        raise ConfigError(f"split={split!r} is invalid: must be one of {list(SPLITS)}")
    if cfg.channels not in (1, 3):
        raise ConfigError(f"data.channels={cfg.channels!r} is invalid: must be 1 or 3")
    if cfg.resolution < 4:
        raise ConfigError(f"data.resolution={cfg.resolution!r} is invalid: must be >= 4, e.g. 28 or 32")
    cfg.validate()
    data = get_source(cfg.source)(cfg, split)
    _check_contract(data, cfg, split)
    if split != "train" or not names_a_subset(cfg):
        return data
    keys = item_keys(cfg, split, data) if cfg.index_half else None  # [N] item indices the halves split on
    keep = subset_indices(data.labels, cfg, data.class_names, keys)  # sorted [M]
    return ImageData(
        name=data.name,
        images=data.images[keep],  # [M, C, R, R]
        labels=data.labels[keep],
        class_names=data.class_names,
        skipped_files=data.skipped_files,
    )


def _check_contract(data: ImageData, cfg: DataConfig, split: str) -> None:
    """Fail loudly if a source broke the ImageData contract (catches third-party sources early)."""
    want = (cfg.channels, cfg.resolution, cfg.resolution)
    problems = []
    if data.images.dtype != np.uint8 or data.images.ndim != 4 or data.image_shape != want:
        expected = f"uint8 [N, {want[0]}, {want[1]}, {want[2]}]"
        problems.append(f"images {data.images.dtype} {data.images.shape}, expected {expected}")
    if data.labels.dtype != np.int64 or data.labels.shape != (len(data),):
        problems.append(f"labels {data.labels.dtype} {data.labels.shape}, expected int64 [{len(data)}]")
    elif len(data) and (data.labels.min() < 0 or data.labels.max() >= data.num_classes):
        problems.append(f"labels outside [0, {data.num_classes})")
    if problems:
        raise DataError(
            f"source {cfg.source!r} ({split}) returned bad data: {'; '.join(problems)}; "
            f"this is a bug in the source's loader"
        )


# Consumer-side loaders import torch / ray: resolve them lazily so `import synthgen.data` stays light.
_LAZY = {
    "SyntheticShardDataset": "synthgen.data.shard_dataset",
    "load_shard_arrays": "synthgen.data.shard_dataset",
    "read_manifest": "synthgen.shards",  # the shard format's own reader, re-exported for consumers
    "ShardManifest": "synthgen.shards",
    "ImageDataset": "synthgen.data.mix",
    "MixedDataset": "synthgen.data.mix",
    "MixedSampler": "synthgen.data.mix",
    "MixedBatchSampler": "synthgen.data.mix",
    "class_mapping": "synthgen.data.mix",
    "read_synthetic": "synthgen.data.ray_reader",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'synthgen.data' has no attribute {name!r}")
