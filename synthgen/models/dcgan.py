"""``dcgan``: unconditional DCGAN (Radford et al. 2015) at any square side that is a multiple of 4.

Generator: ``z -> linear -> start grid -> BN + ReLU -> n x (ConvT 4x4 s2 + BN + ReLU) -> conv 3x3 to C
channels -> tanh``. Discriminator: ``n x (conv 4x4 s2 + LeakyReLU 0.2) -> conv 3x3 + LeakyReLU -> linear
over the start grid``. The layout is cdcgan's without the class inputs, so the two compare fairly.
D has no batch-norm (unlike the 2015 paper) so its logits are per-sample, which the wgan-gp penalty
needs and which keeps real and fake batches from leaking statistics into each other.
Resolution and width rules: see ``synthgen.models.blocks``. Labels are accepted and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from synthgen.models.blocks import ConvWidths, UpBlock, dcgan_init, down_features, level_sides, width
from synthgen.models.registry import register_model


class DCGenerator(nn.Module):
    """Unconditional generator: ``forward(z [N, z_dim], labels=None) -> [N, C, H, W]`` in [-1, 1]."""

    conditional = False

    def __init__(self, z_dim: int, image_shape: tuple[int, int, int], num_classes: int, base: int) -> None:
        super().__init__()
        c, size, _ = image_shape
        self.z_dim, self.num_classes, self.image_shape = z_dim, num_classes, tuple(image_shape)
        sides = level_sides(size)  # e.g. [7, 14, 28]
        chans = [width(base, size, s) for s in sides]  # e.g. [128, 64, 16]
        self.start = sides[0]
        self.fc = nn.Linear(z_dim, chans[0] * self.start * self.start, bias=False)
        self.fc_norm = nn.BatchNorm2d(chans[0])
        self.ups = nn.ModuleList(UpBlock(chans[i], chans[i + 1]) for i in range(len(chans) - 1))
        self.to_image = nn.Conv2d(chans[-1], c, kernel_size=3, padding=1)
        dcgan_init(self)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.fc(z).view(z.shape[0], -1, self.start, self.start)  # [N, C0, s, s]
        h = nn.functional.relu(self.fc_norm(h))
        for up in self.ups:
            h = up(h)  # [N, Ci, 2s, 2s]
        return self.to_image(h).tanh()  # [N, C, H, W]


class DCDiscriminator(nn.Module):
    """Unconditional discriminator: ``forward(x [N, C, H, W], labels=None) -> [N]`` logits."""

    conditional = False

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, base: int) -> None:
        super().__init__()
        self.num_classes, self.image_shape = num_classes, tuple(image_shape)
        self.features, feature_dim = down_features(image_shape, base, nn.Conv2d, slope=0.2)
        # the classic final layer: one filter spanning the whole start grid == a linear map on it
        self.out = nn.Linear(feature_dim, 1)
        dcgan_init(self)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.features(x).flatten(1)  # [N, C_last * s * s]
        return self.out(h).squeeze(1)  # [N]


@dataclass(frozen=True)
class DCGANOptions(ConvWidths):
    """``model.arch`` of dcgan: the two base widths (fields and defaults from ``ConvWidths``)."""


@register_model("dcgan", conditional=False, options=DCGANOptions)
def build(
    opts: DCGANOptions, z_dim: int, image_shape: tuple[int, int, int], num_classes: int
) -> tuple[nn.Module, nn.Module]:
    """Build the unconditional DCGAN (G, D) pair for ``image_shape`` (C, H, W)."""
    g = DCGenerator(z_dim, image_shape, num_classes, opts.g_channels)
    d = DCDiscriminator(image_shape, num_classes, opts.d_channels)
    return g, d
