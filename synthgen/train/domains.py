"""The two domains an image-to-image model trains on: A (``data:``, labelled) and B.

- ``data.pairs: edges``: pairs derived from ``data:``'s images (A = their outlines, B = the images), paired.
- ``data.pairs: downsample``: the same for an upscaler (A = the images shrunk by ``model.arch.factor``).
- ``data_b:`` with a paired model (pix2pix): two ImageFolders whose files match by relative path, paired.
- ``data_b:`` with an unpaired model (cyclegan): B loaded on its own; its labels are never used.

A subset of ``data:`` (``max_images`` / ``class_counts``) picks the same rows of both domains when they are paired.
"""

from __future__ import annotations

from dataclasses import dataclass

from synthgen.config import ExperimentConfig
from synthgen.data import ImageData, load_images
from synthgen.data.pairs import downsample_pairs, edge_pairs, folder_pairs
from synthgen.data.subset import names_a_subset, subset_indices
from synthgen.errors import ConfigError
from synthgen.models.registry import upscale_factor


@dataclass(frozen=True)
class Domains:
    a: ImageData  # domain A: the inputs, whose labels every batch carries
    b: ImageData  # domain B: the targets (row-aligned with ``a`` when paired)
    paired: bool  # row i of b is the translation of row i of a


def load_domains(cfg: ExperimentConfig, split: str = "train") -> Domains:
    """Load the domains of ``cfg`` for ``split`` (the subset of ``cfg.data`` applies to the train split).

    Args:
        cfg: the resolved config (its ``data``, ``data_b`` and model).
        split: "train" or "test".

    Raises:
        ConfigError: neither ``data.pairs`` nor ``data_b`` is set, or a paired model's ``data_b`` is not an
            imagefolder matching ``data``.
        DataError: unreadable data, files without a partner, domains with other classes.
    """
    from synthgen.models import get_model_spec

    paired = get_model_spec(cfg.model.name).paired  # whether the model trains on pairs
    if cfg.data.pairs == "edges":
        pairs = edge_pairs(load_images(cfg.data, split))
        return Domains(pairs.a, pairs.b, paired=True)
    if cfg.data.pairs == "downsample":  # ExperimentConfig.validate: only for an upscaler, whose options have a factor
        pairs = downsample_pairs(load_images(cfg.data, split), upscale_factor(cfg.model.name, cfg.model.arch))
        return Domains(pairs.a, pairs.b, paired=True)
    if cfg.data_b is None:
        raise ConfigError(
            f"model.name={cfg.model.name!r} translates domain A (data:) into domain B: set data_b: (B's images) "
            "or, for pairs derived from data:, data.pairs=edges"
        )
    if not paired:
        return Domains(load_images(cfg.data, split), load_images(cfg.data_b, split), paired=False)
    if cfg.data.source != "imagefolder" or cfg.data_b.source != "imagefolder":
        raise ConfigError(
            f"model.name={cfg.model.name!r} trains on pairs: data: and data_b: must both be imagefolders whose "
            "files match by relative path (or set data.pairs=edges)"
        )
    if cfg.data.index_half:
        raise ConfigError(
            f"data.index_half={cfg.data.index_half!r} splits one set of items in two, but paired folders already "
            "match A and B by path: drop index_half, or pick the pairs' subset with max_images / subset_seed"
        )
    pairs = folder_pairs(
        cfg.data.root, cfg.data_b.root, split, cfg.data.resolution, (cfg.data.channels, cfg.data_b.channels)
    )
    if split != "train" or not names_a_subset(cfg.data):
        return Domains(pairs.a, pairs.b, paired=True)
    keep = subset_indices(pairs.a.labels, cfg.data, pairs.a.class_names)  # sorted [M]
    return Domains(_rows(pairs.a, keep), _rows(pairs.b, keep), paired=True)


def _rows(data: ImageData, keep) -> ImageData:
    return ImageData(name=data.name, images=data.images[keep], labels=data.labels[keep], class_names=data.class_names)
