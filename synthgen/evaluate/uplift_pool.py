"""The synthetic pool of one uplift run (subset, seed): around the subset's inverted images, or from the prior.

``uplift.pool=inversion`` inverts every real image of the subset into the generator and varies it in latent
space (``synthgen.invert.inversion``). How many images each class gets is ``uplift.class_weights``, in the
terms of ``synthgen sample --around --class-weights`` and through the same code: ``data`` varies every real
image in turn (the subset's class mix, ``neighbour_images``); ``uniform`` or a weights file fixes the
per-class totals exactly (``allocate_counts``) and spreads each over that class's images
(``variations_per_image``), so a rare class's images get more variations each, and sample ``(i, j)`` is
``G(z_i + sigma * eps(seed, i, j), y_i)`` exactly as ``--around`` makes it. ``uplift.pool=prior`` draws
class-balanced prior samples, judge-filtered by the subset's own real-only classifier when
``uplift.filter`` is set.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from synthgen.data import ImageData
from synthgen.errors import ConfigError
from synthgen.evaluate.context import EvalContext
from synthgen.evaluate.sources import JudgeFilter, generate_images, load_checkpoint_generator
from synthgen.invert.inversion import Inversion, around_images, invert, neighbour_images
from synthgen.models.classifier import SmallCNN
from synthgen.models.latent import latent_space
from synthgen.sample.around import variations_per_image
from synthgen.sample.plan import allocate_counts, resolve_class_weights


def pool_weights(u: Any) -> str:
    """``uplift.class_weights`` resolved: ``auto`` is ``uniform`` for the long-tail setting, else ``data``."""
    if u.class_weights == "auto":
        return "uniform" if u.setting == "long_tail" else "data"
    return u.class_weights


def pool_class_counts(
    spec: str, labels: np.ndarray, class_names: Sequence[str], num_synthetic: int
) -> list[int] | None:
    """Exact synthetic images per class for weights ``spec`` (None for ``data``: every real image in turn).

    Args:
        spec: ``data``, ``uniform`` or a YAML/JSON file {class name or index: weight}.
        labels: int64 [N] labels of the real subset.
        class_names: the K class names.
        num_synthetic: the pool's size.

    Returns:
        K counts summing to ``num_synthetic`` (largest-remainder rounding), or None.

    Raises:
        ConfigError: a bad weights file, all weights 0, or weight for a class the subset has no image of.
    """
    if spec == "data":
        return None
    have = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(class_names))  # [K]
    weights = resolve_class_weights(spec, class_names)
    empty = [class_names[c] for c, w in enumerate(weights) if w > 0 and have[c] == 0]
    if empty:
        raise ConfigError(
            f"uplift.class_weights={spec!r} gives classes {empty} synthetic images but the real subset "
            "has no image of them to vary; give them weight 0 in the weights file"
        )
    return allocate_counts(num_synthetic, weights)


@torch.inference_mode()
def weighted_neighbour_images(
    generator: torch.nn.Module,
    inversion: Inversion,
    variations: np.ndarray,
    image_ids: np.ndarray,
    sigma: float,
    seed: int,
    batch_size: int = 500,
) -> tuple[np.ndarray, np.ndarray]:
    """``variations[r]`` images around each inverted image ``r`` (``--around``'s rule): variation ``j`` of the real
    image ``i = image_ids[r]`` is ``G(z_i + sigma * eps(seed, i, j), y_i)`` (``neighbour_latents``), in order.

    Args:
        generator: the generator the inversion was made with.
        inversion: ``labels`` [R] and ``latents`` [R, z_dim] of the inverted images.
        variations: int64 [R] images to draw around each (``synthgen.sample.around.variations_per_image``).
        image_ids: int64 [R] each inverted image's index in the real subset (keys its noise).
        sigma: latent noise scale.
        seed: seed of the noise.
        batch_size: generator batch size (does not change the images).

    Returns:
        (images uint8 [M, C, H, W], labels int64 [M]), M = sum(variations); each image has its source's label.
    """
    generator.eval()
    v = np.asarray(variations, dtype=np.int64)  # [R]
    rows = np.repeat(np.arange(len(v), dtype=np.int64), v)  # [M] the inverted image each sample varies
    j = np.arange(len(rows), dtype=np.int64) - np.repeat(np.cumsum(v) - v, v)  # [M] its variation number
    ids = np.asarray(image_ids, dtype=np.int64)[rows]  # [M] real-subset index i of that image
    labels = np.asarray(inversion.labels, dtype=np.int64)[rows]  # [M]
    device = next(generator.parameters()).device
    space = latent_space(generator)
    chunks = []
    for lo in range(0, len(rows), batch_size):
        part = slice(lo, lo + batch_size)
        chunks.append(
            around_images(space, inversion.latents, rows[part], ids[part], j[part], labels[part], sigma, seed, device)
            .cpu()
            .numpy()
        )  # [B, C, H, W]
    return np.concatenate(chunks), labels


def synthetic_pool(
    ctx: EvalContext, path: str | None, seed: int, real: ImageData, real_only: SmallCNN
) -> tuple[ImageData, Inversion | None]:
    """The synthetic pool of one (subset, seed): ``uplift.num_synthetic`` images from the honest generator at
    ``path`` (None = the evaluated source), with the inversion it was drawn around (pool=prior: None).

    With class weights other than ``data`` only the real images that get variations are inverted (as
    ``--around`` does: a long tail's commonest class may need a fraction of its images).

    Raises:
        ConfigError: see ``pool_class_counts``; a filter without a generator to draw from.
    """
    cfg, u = ctx.cfg, ctx.cfg.uplift
    if u.pool == "prior":
        return _prior_pool(ctx, path, seed, real_only), None
    # check_uplift_possible has made sure a source without a generator never gets here
    generator = load_checkpoint_generator(path, cfg.use_ema)[0] if path is not None else ctx.source.generator
    counts = pool_class_counts(pool_weights(u), real.labels, real.class_names, u.num_synthetic)
    if counts is None:
        inv = invert(generator, real.images, real.labels, steps=u.inversion_steps, seed=cfg.seed + seed)
        images, labels = neighbour_images(
            generator, inv, u.num_synthetic, u.inversion_sigma, seed=cfg.seed + 1000 + seed, batch_size=cfg.batch_size
        )
    else:
        have = np.bincount(real.labels, minlength=len(counts))  # [K]
        v = variations_per_image(real.labels, counts, have)  # [N] variations of each real image
        used = np.flatnonzero(v > 0).astype(np.int64)  # [R] the images to invert
        inv = invert(
            generator,
            real.images[used],
            real.labels[used],
            steps=u.inversion_steps,
            seed=cfg.seed + seed,
            image_ids=used,
        )
        images, labels = weighted_neighbour_images(
            generator, inv, v[used], used, u.inversion_sigma, seed=cfg.seed + 1000 + seed, batch_size=cfg.batch_size
        )
    return ImageData(name="inversion", images=images, labels=labels, class_names=real.class_names), inv


def _prior_pool(ctx: EvalContext, path: str | None, seed: int, real_only: SmallCNN) -> ImageData:
    cfg, u = ctx.cfg, ctx.cfg.uplift
    spec = u.filter
    judge_filter = JudgeFilter(real_only.eval(), spec.threshold, u.filter_max_candidates) if spec else None
    if path is not None:
        return generate_images(
            path,
            u.num_synthetic,
            seed=cfg.seed + 1000 + seed,
            use_ema=cfg.use_ema,
            batch_size=cfg.batch_size,
            judge_filter=judge_filter,
        )
    if judge_filter is None:
        return ctx.source.images(u.num_synthetic)
    if ctx.source.generator is None:
        raise ConfigError(
            "uplift.filter needs a generator to draw candidates from: use the honest setting, "
            "evaluate a checkpoint, or drop uplift.filter"
        )
    # The same source with this subset's filter instead of the evaluated one's (and its own image cache)
    return dataclasses.replace(ctx.source, judge_filter=judge_filter, _cache=None).images(u.num_synthetic)
