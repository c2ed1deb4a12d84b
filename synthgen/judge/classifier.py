"""Training and inference for ``SmallCNN`` (``synthgen.models.classifier``): the judge, CAS and uplift.

``fit`` runs a fixed number of Adam steps over any iterable of batches (``shuffled_batches`` for one
array, ``synthgen.data.mix`` for real + synthetic), so every caller compares at equal compute.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from synthgen.errors import ConfigError
from synthgen.models.classifier import FEATURE_DIM, SmallCNN
from synthgen.pixels import to_float

log = logging.getLogger("synthgen")

# One training batch: images uint8 [B, C, H, W] and int labels [B] (numpy arrays or tensors).
Batch = tuple["np.ndarray | torch.Tensor", "np.ndarray | torch.Tensor"]


@contextlib.contextmanager
def flush_denormals() -> Iterator[None]:
    """Treat denormal floats as zero inside the block (torch's default, off, is restored after).

    Classifiers trained on noise-like synthetic images end up with denormal activations, and x86
    arithmetic on denormals is many times slower: CAS on a bad generator took 3x longer without this.
    """
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def random_shift(x: torch.Tensor, gen: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Translate each image of x [N, C, H, W] by up to ``max_shift`` pixels, filling with black (-1).

    Only shifts: they preserve the label for every data set synthgen handles (flips do not for digits).
    """
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)  # [N, C, H+2s, W+2s], -1 = black
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    rows = dy[:, None] + torch.arange(h)[None, :]  # [N, H]
    cols = dx[:, None] + torch.arange(w)[None, :]  # [N, W]
    idx = torch.arange(n)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]]  # [N, H, W, C]
    return out.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)


def shuffled_batches(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int = 0) -> Iterator[Batch]:
    """Endless batches of ``batch_size`` rows walking shuffled epochs of (images, labels).

    Each epoch is a fresh permutation; its last incomplete batch is skipped, so every batch is full.

    Raises:
        ConfigError: ``batch_size`` outside [1, len(images)].
    """
    n = int(images.shape[0])
    if not 1 <= batch_size <= n:
        raise ConfigError(f"batch_size={batch_size} is invalid for {n} images: must be in [1, {n}]")
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(n)
        for start in range(0, n - batch_size + 1, batch_size):
            idx = order[start : start + batch_size]
            yield images[idx], labels[idx]


def fit(
    model: SmallCNN,
    batches: Iterable[Batch],
    *,
    steps: int,
    lr: float = 1e-3,
    seed: int = 0,
    augment: bool = False,
    progress: bool = True,
    desc: str = "classifier",
) -> SmallCNN:
    """Train ``model`` for ``steps`` Adam steps, one per batch of ``batches`` (cosine learning-rate decay).

    Args:
        model: the classifier (trained in place).
        batches: yields at least ``steps`` batches of uint8 images [B, C, H, W] and int labels [B].
        steps, lr: Adam steps and peak learning rate.
        seed: seeds the augmentation shifts.
        augment: random 2-pixel shifts.
        progress: log a progress line about every 10 s.
        desc: name of the run in those lines.

    Returns:
        The model, in eval mode.

    Raises:
        ConfigError: ``batches`` ran out before ``steps``.
    """
    it = iter(batches)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    # Cosine decay to 0 makes the last epoch's weights good without any validation split.
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    model.train()
    start, last_print = time.time(), time.time()
    with flush_denormals():
        for step in range(steps):
            try:
                images, labels = next(it)
            except StopIteration:
                raise ConfigError(
                    f"[{desc}] the batches ran out after {step} of {steps} steps; give fit at least "
                    "as many batches as steps"
                ) from None
            x = to_float(images)  # [B, C, H, W]
            if augment:
                x = random_shift(x, gen)
            loss = F.cross_entropy(model(x), torch.as_tensor(labels, dtype=torch.long))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if progress and (time.time() - last_print > 10 or step == steps - 1):
                last_print = time.time()
                log.info("[%s] step %d/%d loss %.3f (%.0fs)", desc, step + 1, steps, loss.item(), time.time() - start)
    return model.eval()


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    augment: bool = False,
    progress: bool = True,
    width: int = 32,
    steps: int = 0,
) -> SmallCNN:
    """Train a fresh SmallCNN on uint8 images.

    Args:
        images: uint8 [N, C, H, W].
        labels: int [N] in [0, num_classes).
        num_classes: number of classes.
        epochs: passes over the data (ignored when ``steps`` > 0).
        batch_size, lr, seed: Adam recipe; the same seed gives the same weights.
        augment: random 2-pixel shifts.
        progress: log a line about every 10 s.
        width: first conv block's channels.
        steps: exact number of optimizer steps instead of epochs (0 = use epochs).

    Returns:
        The trained model in eval mode.

    Raises:
        ConfigError: empty data, mismatched labels, or a non-positive epoch/step count.
    """
    images = np.asarray(images)
    labels = np.asarray(labels, dtype=np.int64)
    if images.ndim != 4 or len(images) == 0 or labels.shape != (len(images),):
        raise ConfigError(
            f"train_classifier needs uint8 images [N, C, H, W] and labels [N] with N > 0, "
            f"got {images.shape} and {labels.shape}"
        )
    if steps <= 0 and epochs <= 0:
        raise ConfigError(f"classifier epochs={epochs} is invalid: must be >= 1")
    torch.manual_seed(seed)  # weight init
    model = SmallCNN(images.shape[1], num_classes, images.shape[2], width=width)
    batch = min(batch_size, len(images))
    total = steps if steps > 0 else max(1, epochs * (len(images) // batch))
    return fit(
        model,
        shuffled_batches(images, labels, batch, seed),
        steps=total,
        lr=lr,
        seed=seed,
        augment=augment,
        progress=progress,
    )


@torch.inference_mode()
def predict_logits(model: SmallCNN, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Logits float32 [N, K] of uint8 images [N, C, H, W]."""
    model.eval()
    with flush_denormals():
        out = [model(to_float(images[i : i + batch_size])).numpy() for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, model.num_classes), np.float32)


@torch.inference_mode()
def extract_features(model: SmallCNN, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Penultimate features float32 [N, 128] of uint8 images [N, C, H, W]."""
    model.eval()
    with flush_denormals():
        out = [model.features(to_float(images[i : i + batch_size])).numpy() for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, FEATURE_DIM), np.float32)


def accuracy(model: SmallCNN, images: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy in [0, 1] of ``model`` on uint8 images [N, C, H, W] with int labels [N]."""
    if len(images) == 0:
        raise ConfigError("accuracy needs at least one image")
    pred = predict_logits(model, images).argmax(axis=1)
    return float((pred == np.asarray(labels)).mean())


def per_class_accuracy(pred: np.ndarray, labels: np.ndarray, class_names: Sequence[str]) -> dict[str, float | None]:
    """Accuracy of predicted labels ``pred`` [N] against ``labels`` [N] within each class.

    Returns:
        {class name: accuracy in [0, 1]}, None for a class without images.
    """
    pred, labels = np.asarray(pred), np.asarray(labels)
    return {
        name: float((pred[labels == c] == c).mean()) if (labels == c).any() else None
        for c, name in enumerate(class_names)
    }


def label_probability(judge_model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The judge's probability float32 [n] of ``labels`` [n] for uint8 ``images`` [n, C, H, W]."""
    probs = torch.softmax(judge_model(to_float(images)).float(), dim=1)  # [n, K]
    return probs.gather(1, labels.view(-1, 1)).squeeze(1)  # [n]
