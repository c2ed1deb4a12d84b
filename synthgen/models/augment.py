"""DiffAugment (Zhao et al. 2020): differentiable augmentations applied to every image D sees.

``diff_augment(x, "translation,cutout,color")`` augments a batch [N, C, H, W] in [-1, 1]. The training loop
applies the same policy to real and fake batches (fresh random parameters per image, the same kinds of
transform), and G's gradient flows back through the augmentation, so D never sees un-augmented images and
G is not pushed to produce augmented-looking ones. This is what lets a GAN train on few images.

Ops (as in the reference implementation):
    translation  shift by up to 1/8 of the side, filling with zeros (mid-grey in [-1, 1])
    cutout       zero a square of half the side at a random position
    color        random brightness, saturation (3-channel images only) and contrast
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from synthgen.errors import ConfigError

TRANSLATION_RATIO = 0.125  # max shift as a fraction of the side
CUTOUT_RATIO = 0.5  # cutout square side as a fraction of the image side


def _rand(n: int, x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Uniform [0, 1) factors, one per image, shaped [N, 1, 1, 1] to broadcast over C, H, W."""
    return torch.rand(n, 1, 1, 1, dtype=x.dtype, device=x.device, generator=generator)


def _color(x: Tensor, generator: torch.Generator | None) -> Tensor:
    n = x.shape[0]
    x = x + (_rand(n, x, generator) - 0.5)  # brightness: add U(-0.5, 0.5)
    if x.shape[1] == 3:
        # saturation: scale the distance from the per-pixel grey by U(0, 2); a no-op for 1 channel
        mean = x.mean(dim=1, keepdim=True)  # [N, 1, H, W]
        x = (x - mean) * (_rand(n, x, generator) * 2.0) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # [N, 1, 1, 1]
    return (x - mean) * (_rand(n, x, generator) + 0.5) + mean  # contrast: U(0.5, 1.5)


def _translation(x: Tensor, generator: torch.Generator | None) -> Tensor:
    n, _, h, w = x.shape
    sx, sy = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    dev = x.device
    tx = torch.randint(-sx, sx + 1, (n, 1, 1), device=dev, generator=generator)  # [N, 1, 1]
    ty = torch.randint(-sy, sy + 1, (n, 1, 1), device=dev, generator=generator)  # [N, 1, 1]
    gb, gx, gy = torch.meshgrid(
        torch.arange(n, device=dev), torch.arange(h, device=dev), torch.arange(w, device=dev), indexing="ij"
    )  # each [N, H, W]
    # +1 for the one-pixel zero border; clamping onto it fills shifted-in pixels with zeros
    gx = torch.clamp(gx + tx + 1, 0, h + 1)
    gy = torch.clamp(gy + ty + 1, 0, w + 1)
    x_pad = F.pad(x, [1, 1, 1, 1])  # [N, C, H+2, W+2]
    return x_pad.permute(0, 2, 3, 1)[gb, gx, gy].permute(0, 3, 1, 2).contiguous()  # [N, C, H, W]


def _cutout(x: Tensor, generator: torch.Generator | None) -> Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    dev = x.device
    ox = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=dev, generator=generator)  # [N, 1, 1]
    oy = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=dev, generator=generator)  # [N, 1, 1]
    gb, gx, gy = torch.meshgrid(
        torch.arange(n, device=dev), torch.arange(ch, device=dev), torch.arange(cw, device=dev), indexing="ij"
    )  # each [N, ch, cw]
    gx = torch.clamp(gx + ox - ch // 2, 0, h - 1)
    gy = torch.clamp(gy + oy - cw // 2, 0, w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype, device=dev)  # [N, H, W]
    mask[gb, gx, gy] = 0
    return x * mask.unsqueeze(1)  # [N, C, H, W]


AUGMENTS: dict[str, Callable[[Tensor, torch.Generator | None], Tensor]] = {
    "translation": _translation,
    "cutout": _cutout,
    "color": _color,
}


def parse_policy(policy: str) -> list[str]:
    """Split a comma list of ops (spaces and empty items ignored) and check every name.

    Raises:
        ConfigError: an unknown op; the message lists the valid ones.
    """
    ops = [p.strip() for p in policy.split(",") if p.strip()]
    unknown = [p for p in ops if p not in AUGMENTS]
    if unknown:
        raise ConfigError(
            f"model.diffaugment={policy!r} has unknown op(s) {unknown}; use a comma list of {sorted(AUGMENTS)} "
            f"or '' for none"
        )
    return ops


def diff_augment(x: Tensor, policy: str, generator: torch.Generator | None = None) -> Tensor:
    """Apply the ops of ``policy`` in order to images ``x`` [N, C, H, W]; differentiable w.r.t. ``x``.

    Args:
        x: image batch [N, C, H, W].
        policy: comma list from {translation, cutout, color}; "" returns ``x`` itself.
        generator: optional RNG (on ``x``'s device) for reproducible augmentation.

    Returns:
        Augmented batch of the same shape.

    Raises:
        ConfigError: an unknown op in ``policy``.
    """
    for op in parse_policy(policy):
        x = AUGMENTS[op](x, generator)
    return x
