"""``mlp``: the vanilla fully-connected GAN (Goodfellow et al. 2014) as it is usually first written.

Generator: ``z -> 256 -> 512 -> 1024 -> C*H*W`` with LeakyReLU(0.2) and a tanh output.
Discriminator: ``C*H*W -> 1024 -> 512 -> 256 -> 1`` with LeakyReLU(0.2) and dropout 0.3.
Unconditional and width-fixed (its ``model.arch`` options are empty): it is the baseline the conv
models are measured against. Labels are accepted and ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor, nn

from synthgen.models.registry import register_model

G_HIDDEN = (256, 512, 1024)  # the classic generator widths
D_HIDDEN = (1024, 512, 256)  # the classic discriminator widths
D_DROPOUT = 0.3  # the classic discriminator dropout


class MLPGenerator(nn.Module):
    """``forward(z [N, z_dim], labels=None) -> [N, C, H, W]`` in [-1, 1]."""

    conditional = False

    def __init__(self, z_dim: int, image_shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__()
        self.z_dim, self.num_classes, self.image_shape = z_dim, num_classes, tuple(image_shape)
        layers: list[nn.Module] = []
        prev = z_dim
        for h in G_HIDDEN:
            layers += [nn.Linear(prev, h), nn.LeakyReLU(0.2, inplace=True)]
            prev = h
        layers += [nn.Linear(prev, math.prod(image_shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(z).view(z.shape[0], *self.image_shape)  # [N, C, H, W]


class MLPDiscriminator(nn.Module):
    """``forward(x [N, C, H, W], labels=None) -> [N]`` logits."""

    conditional = False

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__()
        self.num_classes, self.image_shape = num_classes, tuple(image_shape)
        layers: list[nn.Module] = []
        prev = math.prod(image_shape)
        for h in D_HIDDEN:
            layers += [nn.Linear(prev, h), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(D_DROPOUT)]
            prev = h
        layers.append(nn.Linear(prev, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(x.flatten(1)).squeeze(1)  # [N]


@dataclass(frozen=True)
class MLPOptions:
    """``model.arch`` of mlp: none. The classic widths (G_HIDDEN, D_HIDDEN) are the point of the baseline."""


@register_model("mlp", conditional=False, options=MLPOptions)
def build(
    opts: MLPOptions, z_dim: int, image_shape: tuple[int, int, int], num_classes: int
) -> tuple[nn.Module, nn.Module]:
    """Build the classic MLP (G, D) pair; the documented classic uses ``z_dim`` 100."""
    return MLPGenerator(z_dim, image_shape, num_classes), MLPDiscriminator(image_shape, num_classes)
