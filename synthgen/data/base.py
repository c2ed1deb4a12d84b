"""One interface for every real-image source: ``load_images(DataConfig, split) -> ImageData``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from synthgen.config import DataConfig
from synthgen.registries import lookup, register


@dataclass(frozen=True)
class ImageData:
    name: str  # source name, e.g. "fashion-mnist"
    images: np.ndarray  # uint8 [N, C, H, W]
    labels: np.ndarray  # int64 [N], each in [0, num_classes)
    class_names: tuple[str, ...]  # index -> human-readable class name
    skipped_files: tuple[str, ...] = ()  # unreadable files skipped (only with data.skip_bad_files)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W)."""
        return tuple(int(s) for s in self.images.shape[1:])  # type: ignore[return-value]

    def __len__(self) -> int:
        return int(self.images.shape[0])


# (data config, split "train" | "test") -> ImageData at cfg.resolution / cfg.channels, before subsetting
SourceLoader = Callable[[DataConfig, str], ImageData]
SOURCES: dict[str, SourceLoader] = {}


def register_source(name: str) -> Callable[[SourceLoader], SourceLoader]:
    """Register a loader ``fn(cfg, split) -> ImageData`` under ``name``."""

    return lambda fn: register(SOURCES, name, fn, "data source")


def get_source(name: str) -> SourceLoader:
    """Return the loader registered as ``name``.

    Raises:
        ConfigError: unknown source; the message lists the registered ones.
    """
    # No import of synthgen.data here (that would be a cycle): importing this module runs the
    # package's __init__ first, which imports every source module and so fills SOURCES.
    return lookup(SOURCES, name, "data.source", "source")
