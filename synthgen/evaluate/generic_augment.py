"""The transfer metric's generic augmentation: what a user could do to A's images without knowing how B was made.

A baseline, not a recipe of ours: tint, background colour, ColorJitter and noise from torchvision.transforms.v2,
each copy of each image seeded by (seed, item index, copy), so the pool does not depend on the order or the batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

GENERIC_DOMAIN = 0x47454E45524943  # "GENERIC": the seed word of the generic augmentation's item seeds


def to_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """uint8 [N, C, H, W] -> uint8 [N, channels, H, W]: gray replicated, or RGB averaged to gray."""
    if images.shape[1] == channels:
        return images
    if channels == 3:
        return np.repeat(images, 3, axis=1)
    return images.astype(np.float32).mean(axis=1, keepdims=True).round().astype(np.uint8)


def _item_seed(seed: int, key: int, copy: int) -> int:
    """The torch seed of copy ``copy`` of item ``key``'s generic augmentation."""
    return int(np.random.SeedSequence([int(seed), GENERIC_DOMAIN, int(key), int(copy)]).generate_state(1)[0])


def generic_augment(images: np.ndarray, keys: np.ndarray, seed: int, t: Any, channels: int = 3) -> np.ndarray:
    """The generic augmentation pool of A's images: uint8 [N * copies, channels, H, W], row i * copies + j = copy j
    of image i, each a function of (its pixels, seed, ``keys[i]``, j) alone.

    Each copy (torchvision.transforms.v2 on floats in [0, 1]): gray -> RGB; the item multiplied by a random
    colour (tint in [0.3, 1] per channel); pixels darker than ``t.generic_dark`` (soft ramp) replaced by a random
    background colour; ``ColorJitter(t.generic_jitter x3, t.generic_hue)``; ``GaussianNoise(t.generic_noise)``.

    Args:
        images: uint8 [N, C, H, W] A's images.
        keys: int64 [N] their item indices.
        seed: the transfer seed.
        t: the TransferConfig (generic_*).
        channels: B's channels (RGB results averaged back to gray for a gray B).
    """
    import torch
    from torchvision.transforms import v2

    jitter = v2.ColorJitter(
        brightness=t.generic_jitter, contrast=t.generic_jitter, saturation=t.generic_jitter, hue=t.generic_hue
    )
    noise = v2.GaussianNoise(sigma=t.generic_noise, clip=True) if t.generic_noise > 0 else v2.Identity()
    x = torch.from_numpy(to_channels(np.ascontiguousarray(images), 3)).float() / 255.0  # [N, 3, H, W]
    out = torch.empty((len(x) * t.generic_copies, *x.shape[1:]))  # [N * copies, 3, H, W]
    cpu = torch.random.default_generator
    with torch.random.fork_rng(devices=[]):  # the global RNG v2 draws from, seeded per item and restored after
        for i in range(len(x)):
            alpha = (x[i].mean(dim=0, keepdim=True) / t.generic_dark).clamp(max=1.0)  # [1, H, W] 0 = background
            for j in range(t.generic_copies):
                cpu.manual_seed(_item_seed(seed, keys[i], j))  # the CPU generator only: 50x faster
                tint, background = 0.3 + 0.7 * torch.rand(3, 1, 1), torch.rand(3, 1, 1)  # [3, 1, 1] each
                y = alpha * x[i] * tint + (1 - alpha) * background  # [3, H, W]
                out[i * t.generic_copies + j] = noise(jitter(y.clamp(0, 1)))
    pool = (out.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return to_channels(pool, channels)
