"""Mix real and synthetic images at a chosen ratio, with the labels aligned to the real class order.

Three pieces, used together with a plain ``DataLoader``::

    real = ImageDataset(load_images(cfg, "train"), transform=tf)        # or torchvision FashionMNIST(...)
    synth = SyntheticShardDataset("runs/x/samples", transform=tf)
    mixed = MixedDataset(real, synth)                                   # checks class order
    # per epoch: 25 % of each epoch's samples are synthetic
    loader = DataLoader(mixed, batch_size=128, sampler=MixedSampler(mixed, synthetic_ratio=0.25, seed=0))
    # or per batch: exactly 32 synthetic images in every batch of 128 (synthetic_per_batch(128, 0.25) == 32)
    loader = DataLoader(mixed, batch_sampler=MixedBatchSampler(mixed, 128, synthetic_per_batch=32, seed=0))
    for epoch in range(E):
        loader.sampler.set_epoch(epoch)   # (loader.batch_sampler for MixedBatchSampler)

``MixedDataset`` is the concatenation ``real + synthetic`` (indices ``[0, num_real)`` are real);
the samplers choose the indices, so the mix is a deterministic function of ``(seed, epoch)`` and
``set_epoch`` works with persistent DataLoader workers too. A step-counted loop can ask for all its
batches as one epoch (``num_batches=steps``): each part is then walked in shuffled passes, every image
used once before any repeats (uplift and ``jobs/train_classifier.py`` do this). ``MixedBatchSampler(...,
class_balanced=True)`` draws the real rows class-balanced instead (a long-tailed real set: every class as
often, its images in shuffled passes; the uplift metric's long-tail setting). For DDP give each replica its
``num_replicas`` / ``rank`` (and ``add_dist_sampler=False`` to Ray's ``prepare_data_loader``).

Class alignment: the synthetic class names must equal the real class names in the same order. The
same set in another order is an error unless ``remap_classes=True``, which then maps each
synthetic label to the real index of the same name. Any other difference is an error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from synthgen.data.base import ImageData
from synthgen.data.shard_dataset import OUTPUTS, transformed
from synthgen.errors import ConfigError, ShardError


class ImageDataset(torch.utils.data.Dataset):
    """Map-style dataset over an in-memory ``ImageData`` (e.g. the real training set).

    Same conventions as ``SyntheticShardDataset`` so real and synthetic samples batch together.

    Args:
        data: images uint8 [N, C, H, W], labels, class names.
        transform: callable applied to the image (PIL, or tensor with ``output="tensor"``).
        target_transform: callable applied to the int label.
        output: "pil" (mode "L"/"RGB") or "tensor" (uint8 [C, H, W]).

    Raises:
        ConfigError: unknown ``output``.
    """

    def __init__(
        self,
        data: ImageData,
        transform: Callable[[Any], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        output: str = "pil",
    ) -> None:
        if output not in OUTPUTS:
            raise ConfigError(f"output={output!r} is not supported; choose one of {list(OUTPUTS)}")
        self.data = data
        self.transform = transform
        self.target_transform = target_transform
        self.output = output
        self.classes: list[str] = list(data.class_names)
        self.class_to_idx: dict[str, int] = {c: i for i, c in enumerate(self.classes)}
        self.targets: np.ndarray = np.asarray(data.labels, dtype=np.int64)  # [N]

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        chw = self.data.images[index]  # [C, H, W]
        image: Any
        if self.output == "tensor":
            image = torch.from_numpy(np.ascontiguousarray(chw))
        elif chw.shape[0] == 1:
            image = Image.fromarray(chw[0], mode="L")
        else:
            image = Image.fromarray(np.ascontiguousarray(chw.transpose(1, 2, 0)), mode="RGB")
        return transformed(self, image, int(self.targets[index]))


def class_mapping(
    real_classes: Sequence[str], synthetic_classes: Sequence[str], remap_classes: bool = False
) -> np.ndarray:
    """Map synthetic label indices to real label indices by class name.

    Returns:
        int64 [K]: ``mapping[synthetic_label] = real_label`` (the identity when the orders agree).

    Raises:
        ShardError: the class names differ (both lists named), or the order differs and
            ``remap_classes`` is False.
    """
    real, synth = [str(c) for c in real_classes], [str(c) for c in synthetic_classes]
    if real == synth:
        return np.arange(len(real), dtype=np.int64)
    if sorted(real) != sorted(synth) or len(set(real)) != len(real):
        raise ShardError(
            f"synthetic classes {synth} do not match the real classes {real}; sample the synthetic data "
            "from a generator trained on the same classes (or pass the right real_classes=)"
        )
    if not remap_classes:
        raise ShardError(
            f"synthetic classes {synth} are the real classes {real} in another order; "
            "pass remap_classes=True to map synthetic labels to the real order by name"
        )
    index = {name: i for i, name in enumerate(real)}
    return np.array([index[name] for name in synth], dtype=np.int64)


def _classes_of(dataset: Any) -> Sequence[str] | None:
    """Class names of a dataset: torchvision's ``classes`` or synthgen's ``class_names``."""
    names = getattr(dataset, "classes", None)
    return names if names is not None else getattr(dataset, "class_names", None)


class MixedDataset(torch.utils.data.Dataset):
    """``real + synthetic`` as one dataset whose labels follow the real class order.

    Args:
        real: map-style dataset of ``(image, int label)``.
        synthetic: map-style dataset of ``(image, int label)``, e.g. ``SyntheticShardDataset``.
        real_classes: real class names in label order (default ``real.classes`` or ``real.class_names``).
        synthetic_classes: synthetic class names in label order (default ``synthetic.classes``).
        remap_classes: allow the same class names in another order (labels remapped by name).
        target_transform: applied to the aligned label (set it here, not on the parts).

    Attributes:
        classes: the real class names; num_real, num_synthetic; targets: aligned int64 [N] labels
        when both parts expose ``targets`` (else None); mapping: int64 [K] synthetic -> real label.

    Raises:
        ConfigError: class names are not given and a part has no ``classes`` attribute.
        ShardError: the class names do not match (see ``class_mapping``).
    """

    def __init__(
        self,
        real: torch.utils.data.Dataset,
        synthetic: torch.utils.data.Dataset,
        real_classes: Sequence[str] | None = None,
        synthetic_classes: Sequence[str] | None = None,
        remap_classes: bool = False,
        target_transform: Callable[[int], Any] | None = None,
    ) -> None:
        real_classes = real_classes if real_classes is not None else _classes_of(real)
        synthetic_classes = synthetic_classes if synthetic_classes is not None else _classes_of(synthetic)
        if real_classes is None or synthetic_classes is None:
            which = "real_classes" if real_classes is None else "synthetic_classes"
            raise ConfigError(f"{which} is unknown: that dataset has no .classes / .class_names; pass {which}=[...]")
        self.real, self.synthetic = real, synthetic
        self.mapping = class_mapping(real_classes, synthetic_classes, remap_classes)
        self._identity = bool(np.array_equal(self.mapping, np.arange(len(self.mapping))))
        self.classes: list[str] = [str(c) for c in real_classes]
        self.class_to_idx: dict[str, int] = {c: i for i, c in enumerate(self.classes)}
        self.target_transform = target_transform
        self.num_real, self.num_synthetic = len(real), len(synthetic)  # type: ignore[arg-type]
        real_t, synth_t = getattr(real, "targets", None), getattr(synthetic, "targets", None)
        self.targets: np.ndarray | None = None  # [N] aligned labels, without decoding images
        if real_t is not None and synth_t is not None:
            synth_labels = self.mapping[np.asarray(synth_t, dtype=np.int64)]
            self.targets = np.concatenate([np.asarray(real_t, dtype=np.int64), synth_labels])

    def __len__(self) -> int:
        return self.num_real + self.num_synthetic

    def is_synthetic(self, index: int) -> bool:
        """Whether ``index`` refers to a synthetic sample."""
        return index >= self.num_real

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        if index < self.num_real:
            image, label = self.real[index]
            label = int(label)
        else:
            image, label = self.synthetic[index - self.num_real]
            label = int(label) if self._identity else int(self.mapping[int(label)])
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label


def synthetic_per_batch(batch_size: int, synthetic_fraction: float) -> int:
    """Synthetic rows per batch for a ``synthetic_fraction`` share of every batch (``MixedBatchSampler``).

    ``round(fraction * batch_size)``, but at least one row of each kind when the fraction is strictly
    between 0 and 1 and the batch holds two rows: a "mixed" batch is never silently all one kind.

    Raises:
        ConfigError: ``batch_size`` < 1 or the fraction outside [0, 1].
    """
    if batch_size < 1 or not 0.0 <= synthetic_fraction <= 1.0:
        raise ConfigError(
            f"batch_size={batch_size}, synthetic_fraction={synthetic_fraction} is invalid: "
            "need batch_size >= 1 and a fraction in [0, 1], e.g. 0.25"
        )
    n = round(synthetic_fraction * batch_size)
    if 0.0 < synthetic_fraction < 1.0 and batch_size >= 2:
        n = min(batch_size - 1, max(1, n))
    return int(n)


def _draw(rng: np.random.Generator, pool: int, n: int, what: str) -> np.ndarray:
    """``n`` indices from ``range(pool)``: successive random permutations, so no index repeats
    before every index was used once (sampling without replacement, cycling when ``n > pool``)."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if pool == 0:
        raise ConfigError(f"the mix asks for {n} {what} samples per epoch but the {what} dataset is empty")
    reps = math.ceil(n / pool)
    return np.concatenate([rng.permutation(pool) for _ in range(reps)])[:n].astype(np.int64)


def _draw_balanced(rng: np.random.Generator, labels: np.ndarray, n: int) -> np.ndarray:
    """``n`` class-balanced indices into ``labels`` [N]: each row's class walks shuffled passes over the classes
    present (every class once before any repeats, so each class gets ``n / K`` rows to within one), and each
    class's rows walk shuffled passes over that class's images (``_draw``)."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    present = np.unique(labels)  # [K'] classes with at least one image
    if len(present) == 0:
        raise ConfigError(f"the mix asks for {n} class-balanced real samples per epoch but the real dataset is empty")
    row_class = present[_draw(rng, len(present), n, "class")]  # [n]
    out = np.empty(n, dtype=np.int64)
    for c in present:
        rows = np.flatnonzero(row_class == c)
        members = np.flatnonzero(labels == c)
        out[rows] = members[_draw(rng, len(members), len(rows), "real")]
    return out


def _real_labels(mixed: MixedDataset) -> np.ndarray:
    """int64 [num_real] labels of the real part (its ``targets``), without decoding images.

    Raises:
        ConfigError: the real part has no ``targets``.
    """
    targets = getattr(mixed.real, "targets", None)
    if targets is None:
        raise ConfigError(
            "class_balanced=True needs the real part's labels: give the real dataset a .targets "
            "array (ImageDataset and torchvision's datasets have one), or pass class_balanced=False"
        )
    return np.asarray(targets, dtype=np.int64)


def _check_replicas(num_replicas: int, rank: int) -> None:
    if num_replicas < 1 or not 0 <= rank < num_replicas:
        raise ConfigError(
            f"num_replicas={num_replicas}, rank={rank} is invalid: need num_replicas >= 1, 0 <= rank < num_replicas"
        )


class MixedSampler(torch.utils.data.Sampler[int]):
    """Per-epoch mix: a shuffled epoch of which ``synthetic_ratio`` of the samples are synthetic.

    Args:
        mixed: the ``MixedDataset``.
        synthetic_ratio: fraction of synthetic samples in each epoch, in [0, 1].
        num_samples: samples per epoch over all replicas. Default: every real sample once plus
            enough synthetic ones to reach the ratio (``num_real / (1 - ratio)``); with ratio 1,
            every synthetic sample once. Either part is cycled without replacement if it is short.
        seed: the epoch plan is a function of ``(seed, epoch)`` only.
        num_replicas, rank: DDP; each replica takes every ``num_replicas``-th index of the plan.

    Raises:
        ConfigError: ratio outside [0, 1], bad replica arguments, or a needed part is empty.
    """

    def __init__(
        self,
        mixed: MixedDataset,
        synthetic_ratio: float,
        num_samples: int | None = None,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if not 0.0 <= synthetic_ratio <= 1.0:
            raise ConfigError(f"synthetic_ratio={synthetic_ratio} is invalid: must be in [0, 1]")
        _check_replicas(num_replicas, rank)
        if num_samples is None:
            if synthetic_ratio < 1.0:
                num_samples = round(mixed.num_real / (1.0 - synthetic_ratio))
            else:
                num_samples = mixed.num_synthetic
        if num_samples < 1:
            raise ConfigError(f"num_samples={num_samples} is invalid: the epoch would be empty; pass num_samples >= 1")
        self.mixed, self.ratio, self.seed = mixed, float(synthetic_ratio), int(seed)
        self.num_replicas, self.rank, self.epoch = num_replicas, rank, 0
        self.per_replica = math.ceil(num_samples / num_replicas)  # padded so every replica has as many
        self.total = self.per_replica * num_replicas
        self.num_synthetic = round(self.ratio * self.total)  # synthetic samples per epoch, all replicas
        self.plan(0)  # fail now, not in the first epoch, if a needed part is empty

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose plan ``__iter__`` yields (call before each epoch)."""
        self.epoch = int(epoch)

    def plan(self, epoch: int) -> np.ndarray:
        """All replicas' indices into ``mixed`` for ``epoch``: int64 [total], shuffled."""
        rng = np.random.default_rng([self.seed, epoch])
        real = _draw(rng, self.mixed.num_real, self.total - self.num_synthetic, "real")
        synth = _draw(rng, self.mixed.num_synthetic, self.num_synthetic, "synthetic") + self.mixed.num_real
        return rng.permutation(np.concatenate([real, synth]))

    def __iter__(self) -> Iterator[int]:
        return iter(self.plan(self.epoch)[self.rank :: self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.per_replica


class MixedBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Per-batch mix: every batch holds exactly ``synthetic_per_batch`` synthetic samples.

    Args:
        mixed: the ``MixedDataset``.
        batch_size: samples per batch.
        synthetic_per_batch: synthetic samples in each batch, in [0, batch_size].
        num_batches: batches per epoch per replica. Default: enough for every real sample once
            per epoch over all replicas (with no real samples per batch: every synthetic one).
        seed: the epoch plan is a function of ``(seed, epoch)`` only.
        num_replicas, rank: DDP; replica ``rank`` takes batches ``rank, rank + num_replicas, ...``.
        class_balanced: the real rows draw their classes uniformly (shuffled passes over the classes, then
            over each class's images), however unbalanced the real part is; the synthetic rows keep the
            synthetic part's own class mix. False: every real image equally often (the real class mix).

    Raises:
        ConfigError: bad sizes or replica arguments, a needed part is empty, or ``class_balanced`` with a real
            part that has no ``targets``.
    """

    def __init__(
        self,
        mixed: MixedDataset,
        batch_size: int,
        synthetic_per_batch: int,
        num_batches: int | None = None,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        class_balanced: bool = False,
    ) -> None:
        if batch_size < 1 or not 0 <= synthetic_per_batch <= batch_size:
            raise ConfigError(
                f"batch_size={batch_size}, synthetic_per_batch={synthetic_per_batch} is invalid: "
                "need batch_size >= 1 and 0 <= synthetic_per_batch <= batch_size"
            )
        _check_replicas(num_replicas, rank)
        real_per_batch = batch_size - synthetic_per_batch
        if num_batches is None:
            pool, per = (mixed.num_real, real_per_batch) if real_per_batch else (mixed.num_synthetic, batch_size)
            num_batches = math.ceil(math.ceil(pool / per) / num_replicas)
        if num_batches < 1:
            raise ConfigError(f"num_batches={num_batches} is invalid: the epoch would be empty; pass num_batches >= 1")
        self.mixed, self.batch_size, self.seed = mixed, batch_size, int(seed)
        self.synthetic_per_batch, self.real_per_batch = synthetic_per_batch, real_per_batch
        self.num_batches, self.num_replicas, self.rank, self.epoch = num_batches, num_replicas, rank, 0
        self.real_labels = _real_labels(mixed) if class_balanced and real_per_batch else None  # [num_real]
        self.plan(0)  # fail now if a needed part is empty

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose plan ``__iter__`` yields (call before each epoch)."""
        self.epoch = int(epoch)

    def plan(self, epoch: int) -> np.ndarray:
        """All replicas' batches for ``epoch``: int64 [num_batches * num_replicas, batch_size]."""
        rng = np.random.default_rng([self.seed, epoch])
        b = self.num_batches * self.num_replicas
        n_real = b * self.real_per_batch
        real = (
            _draw_balanced(rng, self.real_labels, n_real)
            if self.real_labels is not None
            else _draw(rng, self.mixed.num_real, n_real, "real")
        ).reshape(b, self.real_per_batch)
        synth = _draw(rng, self.mixed.num_synthetic, b * self.synthetic_per_batch, "synthetic")
        synth = synth.reshape(b, self.synthetic_per_batch) + self.mixed.num_real
        batches = np.concatenate([real, synth], axis=1)  # [B, batch_size]
        return rng.permuted(batches, axis=1)  # shuffle within each batch

    def __iter__(self) -> Iterator[list[int]]:
        for row in self.plan(self.epoch)[self.rank :: self.num_replicas]:
            yield row.tolist()

    def __len__(self) -> int:
        return self.num_batches
