"""The transfer study's data: which half of the item indices each domain's images come from, and each seed's
class-stratified subsets of A (the images translated) and of B (the oracle's and the few-label arms' labels).

``synthgen.evaluate.transfer`` runs the study on them; they hold no translator and no classifier.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthgen.config import DataConfig
from synthgen.data import ImageData, load_images, whole_split
from synthgen.data.subset import in_half, item_keys, subset_indices
from synthgen.errors import ConfigError, DataError

OTHER_HALF = {"even": "odd", "odd": "even"}


@dataclass(frozen=True)
class Halves:
    """The data of a translator's transfer study, from its run's config."""

    a: DataConfig  # domain A on the half of the item indices B's is not (whole: no max_images)
    b: DataConfig  # domain B on its own half (the translator's): the labelled B images (edges: data:'s own images)


def halves(config: Any) -> Halves:
    """Domain A's and B's data configs of the translator run ``config`` (an ExperimentConfig).

    Raises:
        ConfigError: B has no ``index_half`` (A's images could be items whose B image the translator saw), or
            the translator trained on folder pairs (matched by path, they cannot be split in halves).
    """
    from synthgen.models import get_model_spec

    edges = config.data.pairs == "edges"
    if not edges and get_model_spec(config.model.name).paired:
        raise ConfigError(
            f"transfer cannot keep A's images apart from the B images a {config.model.name} trained on folder pairs "
            "saw (pairs match by path, not by item index): evaluate a cyclegan trained with data_b.index_half, or a "
            "pix2pix on data.pairs=edges with data.index_half"
        )
    b = dataclasses.replace(config.data, pairs="") if edges else config.data_b
    key = "data.index_half" if edges else "data_b.index_half"
    if b is None or not b.index_half:
        raise ConfigError(
            f"transfer needs the translator's B images to be one half of the item indices, but its {key} is '': "
            "the A images it measures could be items whose B image the translator saw; train the translator "
            f"with {key}=even (or odd), e.g. jobs/configs/cyclegan_rgb.yaml"
        )
    a = dataclasses.replace(config.data, index_half=OTHER_HALF[b.index_half], max_images=0, class_counts=())
    return Halves(a=a, b=dataclasses.replace(b, max_images=0, class_counts=()))


def describe(cfg: DataConfig) -> str:
    """A data config in a few words, e.g. ``imagefolder data/fmnist_rgb32`` or ``fashion-mnist``."""
    return f"{cfg.source} {cfg.root}" if cfg.root else cfg.source


@dataclass(frozen=True)
class TransferData:
    """Every image the study draws from, loaded once."""

    halves: Halves
    a_all: ImageData  # domain A's whole training split
    a_keys: np.ndarray  # int64 [N_a] item index of each row of a_all
    b_all: ImageData  # domain B's whole training split
    b_keys: np.ndarray  # int64 [N_b] item index of each row of b_all
    test: ImageData  # domain B's test split

    def translator_b_keys(self) -> np.ndarray:
        """int64 item indices of B's half: every B image the translator may have seen."""
        return self.b_keys[in_half(self.b_keys, self.halves.b.index_half)]


@dataclass(frozen=True)
class SeedSets:
    """One seed's images: class-stratified subsets (``subset_seed`` = the seed) of each half."""

    source: ImageData  # A's images [num_source] with labels (in B's class order)
    source_keys: np.ndarray  # int64 [num_source] their item indices
    oracle: ImageData  # B's labelled images [num_oracle]
    oracle_keys: np.ndarray  # int64 [num_oracle]
    few: ImageData  # B's few labelled images [label_fraction * num_oracle]
    few_keys: np.ndarray  # int64


def load_transfer_data(h: Halves, b_all: ImageData, test: ImageData) -> TransferData:
    """Load A's whole training split and key both splits by item index (``b_all``: B's, already loaded)."""
    a_all = load_images(whole_split(h.a), "train")
    return TransferData(
        halves=h,
        a_all=a_all,
        a_keys=item_keys(whole_split(h.a), "train", a_all),
        b_all=b_all,
        b_keys=item_keys(whole_split(h.b), "train", b_all),
        test=test,
    )


def _subset(data: ImageData, keys: np.ndarray, cfg: DataConfig, n: int, seed: int, key: str) -> np.ndarray:
    """``load_images``' rows of ``cfg`` (its half) with ``max_images = n``, ``subset_seed = seed``: sorted int64 [n].

    Raises:
        ConfigError: ``n`` is more than the half holds (named by the transfer key ``key``).
    """
    size = int(in_half(keys, cfg.index_half).sum())
    if n > size:
        raise ConfigError(
            f"{key}={n} is more than the {size} training images of {describe(cfg)} on its {cfg.index_half} half; "
            f"lower it to at most {size}"
        )
    return subset_indices(data.labels, dataclasses.replace(cfg, max_images=n, subset_seed=seed), data.class_names, keys)


def _rows(data: ImageData, rows: np.ndarray, names: tuple[str, ...]) -> ImageData:
    return ImageData(data.name, data.images[rows], data.labels[rows], names)


def few_count(t: Any, num_classes: int) -> int:
    """B labels of the few_b arms: ``label_fraction * num_oracle``, rounded, at least one per class."""
    return max(num_classes, round(t.label_fraction * t.num_oracle))


def seed_sets(data: TransferData, t: Any, seed: int) -> SeedSets:
    """The A and B subsets of ``seed``.

    Raises:
        ConfigError: a size larger than its half; A's and B's classes do not pair up.
        DataError: an A item index inside B's half (never, unless the halves are broken).
    """
    names = tuple(data.test.class_names)
    if len(data.a_all.class_names) != len(names):
        raise ConfigError(
            f"domain A has {len(data.a_all.class_names)} classes {list(data.a_all.class_names)} but B has "
            f"{len(names)} {list(names)}: transfer pairs them by label index; use a B with A's classes in A's order"
        )
    h = data.halves
    a = _subset(data.a_all, data.a_keys, h.a, t.num_source, seed, "transfer.num_source")
    oracle = _subset(data.b_all, data.b_keys, h.b, t.num_oracle, seed, "transfer.num_oracle")
    few = _subset(data.b_all, data.b_keys, h.b, few_count(t, len(names)), seed, "transfer.label_fraction x num_oracle")
    overlap = np.intersect1d(data.a_keys[a], data.translator_b_keys())
    if len(overlap):
        raise DataError(f"transfer: {len(overlap)} A images are items of the translator's B half, e.g. {overlap[:5]}")
    return SeedSets(
        source=_rows(data.a_all, a, names),
        source_keys=data.a_keys[a],
        oracle=_rows(data.b_all, oracle, names),
        oracle_keys=data.b_keys[oracle],
        few=_rows(data.b_all, few, names),
        few_keys=data.b_keys[few],
    )
