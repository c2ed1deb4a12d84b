"""Building blocks shared by the conv models: resolution plan, widths, (conditional) up-blocks, SN layers.

Resolution rule (every conv model): a side ``H`` (a multiple of 4) is reached from a start grid of side
``H / 2**n`` by ``n`` stride-2 up-blocks, with ``n`` the largest count that keeps the start side an integer
``>= 4`` (at least 1: a 4 px image starts at 2x2). So 28 -> 7x7 then 2 steps (7, 14, 28); 32 -> 4x4 then 3
(4, 8, 16, 32); 64 -> 4x4 then 4; 48 -> 6x6 then 3. Discriminators mirror the plan with ``n`` stride-2
down-blocks, from ``H`` to the start grid.

Width rule: a hidden layer working at side ``H / 2**k`` (k >= 1) has ``base * 2**(k-1)`` channels, capped at
``8 * base``, so ``model.arch.g_channels`` / ``d_channels`` is the width at half resolution. Full-resolution layers
are kept thin: the generator has one at ``base / 4`` channels, the discriminator none (its first conv reads
the image and halves the side). Widths never drop below 8. With base 64 at 28 px:
G 128@7 -> 64@14 -> 16@28 -> C@28; D C@28 -> 64@14 -> 128@7 -> 128@7.
Why: full-resolution layers dominate the CPU cost of a step, and a conv with 1 input or output channel runs
at a small fraction of the CPU's speed, so they are as thin as the image quality allows.

Up-blocks use 4x4 stride-2 transposed convs (DCGAN): 4 multiply-adds per output pixel and channel pair
instead of 9 for nearest-upsample + 3x3 conv, which matters when a worker has one CPU thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from synthgen.errors import ConfigError


@dataclass(frozen=True)
class ConvWidths:
    """Base widths of a conv G/D pair (see the width rule above); conv models' options extend it."""

    g_channels: int = 64  # generator base width: its channels at half resolution
    d_channels: int = 64  # discriminator base width: its channels at half resolution

    def __post_init__(self) -> None:
        for key in ("g_channels", "d_channels"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.arch.{key}={getattr(self, key)!r} is invalid: must be >= 1, e.g. 64")


def plan_resolution(size: int) -> tuple[int, int]:
    """Return ``(start_side, num_up)`` with ``start_side * 2**num_up == size`` (see the module docstring).

    Raises:
        ConfigError: ``size`` is not a positive multiple of 4.
    """
    if size < 4 or size % 4 != 0:
        raise ConfigError(f"image side {size} unsupported: use a multiple of 4 such as 28, 32 or 64")
    start, num_up = size, 0
    while start % 2 == 0 and start // 2 >= 4:
        start //= 2
        num_up += 1
    if num_up == 0:  # only size 4: every net needs one stride-2 step to read/write the image
        start, num_up = size // 2, 1
    return start, num_up


def width(base: int, size: int, side: int) -> int:
    """Channels of a hidden layer at ``side`` px in a net for ``size`` px images (see the width rule)."""
    k = 0
    while (side << k) < size:
        k += 1
    # half resolution (k = 1) gets `base`, each further halving doubles it; full resolution gets base / 4
    ch = base * 2 ** (k - 1) if k >= 1 else base // 4
    return int(max(8, min(ch, 8 * base)))


def level_sides(size: int) -> list[int]:
    """Sides of the levels from the start grid to the image, coarsest first: 28 -> [7, 14, 28]."""
    start, num_up = plan_resolution(size)
    return [start * 2**i for i in range(num_up + 1)]


def check_shape(image_shape: tuple[int, int, int], num_classes: int, conditional: bool) -> None:
    """Validate the ``(C, H, W)`` image shape and class count a builder receives.

    Raises:
        ConfigError: non-square, side not a multiple of 4, channels not 1/3, or < 1 class for a conditional net.
    """
    c, h, w = image_shape
    if h != w or h % 4 != 0 or h < 4 or c not in (1, 3):
        raise ConfigError(
            f"image shape {image_shape} unsupported: need square sides that are a multiple of 4 and 1 or 3 channels"
        )
    if conditional and num_classes < 1:
        raise ConfigError(f"a conditional model needs num_classes >= 1, got {num_classes}; check the data source")


def require_labels(labels: Tensor | None, n: int) -> Tensor:
    """Return ``labels`` if it is an int tensor of shape [n]; conditional nets cannot run without them.

    Raises:
        ValueError: labels missing or of the wrong shape/dtype.
    """
    if labels is None:
        raise ValueError("this model is class-conditional: pass labels [N] int64 alongside the input")
    if labels.shape != (n,) or labels.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"labels must be an int64 tensor of shape [{n}], got {tuple(labels.shape)} {labels.dtype}")
    return labels.long()


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm without its own affine, followed by a per-class gain and bias (de Vries et al. 2017).

    ``y = (1 + gamma[label]) * BN(x) + beta[label]``; gamma/beta start at zero so it starts as plain BN.
    """

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.gain = nn.Embedding(num_classes, num_features)
        self.bias = nn.Embedding(num_classes, num_features)
        nn.init.zeros_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        # x: [N, C, H, W], labels: [N]
        h = self.bn(x)
        gamma = self.gain(labels)[:, :, None, None]  # [N, C, 1, 1]
        beta = self.bias(labels)[:, :, None, None]  # [N, C, 1, 1]
        return h * (1.0 + gamma) + beta


class UpBlock(nn.Module):
    """ConvTranspose 4x4 stride 2 (side x2) -> BatchNorm (per-class when ``num_classes`` > 0) -> ReLU."""

    def __init__(self, in_ch: int, out_ch: int, num_classes: int = 0) -> None:
        super().__init__()
        # bias is redundant before a normalisation layer
        self.conv = nn.ConvTranspose2d(in_ch, out_ch, kernel_size=4, stride=2, padding=1, bias=False)
        self.conditional = num_classes > 0
        self.norm: nn.Module = (
            ConditionalBatchNorm2d(out_ch, num_classes) if self.conditional else nn.BatchNorm2d(out_ch)
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.conv(x)  # [N, out_ch, 2H, 2W]
        h = self.norm(h, labels) if self.conditional else self.norm(h)
        return self.act(h)


def sn_conv(in_ch: int, out_ch: int, kernel: int, stride: int, padding: int) -> nn.Module:
    """A Conv2d whose weight is divided by its largest singular value (Miyato et al. 2018)."""
    return spectral_norm(nn.Conv2d(in_ch, out_ch, kernel, stride, padding))


def sn_linear(in_features: int, out_features: int) -> nn.Module:
    """A spectrally normalised Linear layer."""
    return spectral_norm(nn.Linear(in_features, out_features))


def sn_embedding(num_classes: int, dim: int) -> nn.Module:
    """A spectrally normalised class embedding (the projection discriminator's ``V``)."""
    return spectral_norm(nn.Embedding(num_classes, dim))


def down_features(
    image_shape: tuple[int, int, int], base: int, conv: Callable[..., nn.Module], slope: float
) -> tuple[nn.Sequential, int]:
    """The conv discriminators' feature stack: n x (conv 4x4 s2 + LeakyReLU) down to the start grid, then a
    stride-1 conv 3x3 + LeakyReLU there (cheap at that size, and it lets each cell see its neighbours).

    Args:
        image_shape: (C, H, W) of the input images.
        base: the discriminator's base width (see the width rule).
        conv: the layer maker, ``conv(in, out, kernel, stride, padding)``: ``nn.Conv2d`` or ``sn_conv``.
        slope: the LeakyReLU slope.

    Returns:
        (the stack, the size of its flattened output ``C_last * s * s``, e.g. 128 * 7 * 7 = 6272).
    """
    c, size, _ = image_shape
    sides = level_sides(size)[::-1][1:]  # below the image, finest first, e.g. [14, 7]
    chans = [c] + [width(base, size, s) for s in sides]  # e.g. [1, 64, 128]
    layers: list[nn.Module] = []
    for i in range(len(sides)):
        layers += [conv(chans[i], chans[i + 1], 4, 2, 1), nn.LeakyReLU(slope, inplace=True)]
    layers += [conv(chans[-1], chans[-1], 3, 1, 1), nn.LeakyReLU(slope, inplace=True)]
    return nn.Sequential(*layers), chans[-1] * sides[-1] * sides[-1]


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation: conv/linear weights ~ N(0, 0.02), BatchNorm gains ~ N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
