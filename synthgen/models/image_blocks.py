"""Image-to-image building blocks shared by the translation models (pix2pix, CycleGAN, PixelDA): a U-Net generator,
a ResNet-block generator and a PatchGAN discriminator, after junyanz/pytorch-CycleGAN-and-pix2pix, and
``as_channels`` for a network that reads the other domain's channels.

Differences from the reference implementation, and why:
- Instance norm everywhere (the reference uses batch norm in pix2pix): an image's translation must not depend
  on which other images share its batch, so sampling stays byte-identical for any actor count or batch size.
- Depths follow the resolution (32-256 px) instead of being fixed for 256 px: the U-Net goes down to 1x1
  (``log2(side)`` levels, the reference's unet_256 has 8) and the PatchGAN's receptive field is about half the
  image side (``patch_layers``), the reference's 70x70 patches on 256 px being a quarter.
- Optional class conditioning: a learned class embedding, broadcast over the image and concatenated to the
  input channels, so an outline can render as its class.

Networks take uint8-free float images in [-1, 1]; ``labels`` may be None when ``num_classes`` is 0.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

CLASS_MAP_CHANNELS = 8  # channels of the broadcast class embedding concatenated to a conditioned input


def instance_norm(channels: int) -> nn.Module:
    """Per-image normalisation with a learned affine (the reference's ``--norm instance`` plus affine)."""
    return nn.InstanceNorm2d(channels, affine=True)


class ClassMap(nn.Module):
    """``labels [N]`` -> a learned embedding broadcast to ``[N, CLASS_MAP_CHANNELS, H, W]``."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, CLASS_MAP_CHANNELS)

    def forward(self, labels: Tensor, side: int) -> Tensor:
        return self.embed(labels)[:, :, None, None].expand(-1, -1, side, side)  # [N, 8, side, side]


def with_class_map(x: Tensor, labels: Tensor | None, class_map: ClassMap | None) -> Tensor:
    """``x`` with the class map concatenated on the channels (unchanged when the network is unconditional)."""
    if class_map is None:
        return x
    if labels is None:
        raise ValueError("this network is class-conditional: pass labels [N]")
    return torch.cat([x, class_map(labels, x.shape[-1])], dim=1)  # [N, C + 8, H, W]


class UNetGenerator(nn.Module):
    """pix2pix's U-Net: ``forward(x [N, in_channels, H, W], labels [N] | None) -> [N, out_channels, H, W]``.

    ``levels = log2(side)`` stride-2 4x4 convs take the image to 1x1 (widths ``base * 2^k`` capped at
    ``8 * base``), and as many transposed convs come back up, each concatenating the encoder feature of its
    size (the skip connections that carry the input's layout to the output). Dropout (p = ``dropout``) in the
    ``dropout_levels`` innermost decoder levels is the generator's only noise, as in pix2pix: it stays on
    when sampling variations (``train()`` mode of the dropout layers).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        side: int,
        base: int = 64,
        dropout: float = 0.5,
        dropout_levels: int = 3,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        if side < 4 or side & (side - 1):
            raise ValueError(f"the U-Net needs a power-of-two side >= 4, got {side}")
        self.levels = int(math.log2(side))
        self.class_map = ClassMap(num_classes) if num_classes else None
        self.num_classes, self.conditional = num_classes, num_classes > 0
        widths = [min(base * 2**k, 8 * base) for k in range(self.levels)]  # encoder level k output channels
        c_in = in_channels + (CLASS_MAP_CHANNELS if num_classes else 0)
        self.down = nn.ModuleList()
        for k, c_out in enumerate(widths):
            layers: list[nn.Module] = [] if k == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(c_in if k == 0 else widths[k - 1], c_out, 4, 2, 1, bias=k in (0, self.levels - 1)))
            if 0 < k < self.levels - 1:  # no norm on the first level (as the reference) nor on the 1x1 bottleneck
                layers.append(instance_norm(c_out))
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()
        for k in reversed(range(self.levels)):  # decoder level k produces encoder level k-1's size
            c_from = widths[k] if k == self.levels - 1 else 2 * widths[k]  # innermost has no skip to concatenate
            if k == 0:
                self.up.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(c_from, out_channels, 4, 2, 1), nn.Tanh()))
                continue
            layers = [nn.ReLU(), nn.ConvTranspose2d(c_from, widths[k - 1], 4, 2, 1, bias=False)]
            layers.append(instance_norm(widths[k - 1]))
            if self.levels - 1 - k < dropout_levels and dropout > 0:
                layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        h = with_class_map(x, labels, self.class_map)
        skips = []
        for block in self.down:
            h = block(h)
            skips.append(h)  # skips[k]: [N, widths[k], side / 2^(k+1), ...]
        h = skips.pop()  # the 1x1 bottleneck
        for block in self.up[:-1]:
            h = torch.cat([block(h), skips.pop()], dim=1)
        return self.up[-1](h)  # [N, out_channels, side, side] in [-1, 1]


class ResnetBlock(nn.Module):
    """``x + conv-norm-relu-conv-norm(x)`` with reflection padding (CycleGAN's residual block)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=False),
            instance_norm(channels),
            nn.ReLU(),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=False),
            instance_norm(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


UPSAMPLE_MODES = ("transpose", "resize")


def up_layers(in_ch: int, out_ch: int, mode: str) -> list[nn.Module]:
    """Double the side: ``transpose`` is the CycleGAN reference's 3x3 stride-2 transposed conv; ``resize`` is nearest
    x2 then a 3x3 conv (Odena et al. 2016), whose kernel overlaps evenly, so it leaves no checkerboard."""
    if mode == "resize":
        return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=False)]
    return [nn.ConvTranspose2d(in_ch, out_ch, 3, 2, 1, output_padding=1, bias=False)]


class ResnetGenerator(nn.Module):
    """CycleGAN's generator: ``forward(x [N, in_channels, H, W], labels [N] | None) -> [N, out_channels, H, W]``.

    A 7x7 stem, ``downsamplings`` stride-2 convs, ``blocks`` residual blocks, as many ``upsample`` steps back up
    (``up_layers``) and a 7x7 conv to ``out_channels`` with tanh (the reference's resnet_9blocks has 2
    downsamplings, 9 blocks).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        base: int = 64,
        blocks: int = 6,
        downsamplings: int = 2,
        num_classes: int = 0,
        upsample: str = "transpose",
    ) -> None:
        super().__init__()
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(f"upsample={upsample!r}: expected one of {', '.join(UPSAMPLE_MODES)}")
        self.class_map = ClassMap(num_classes) if num_classes else None
        self.num_classes, self.conditional = num_classes, num_classes > 0
        c_in = in_channels + (CLASS_MAP_CHANNELS if num_classes else 0)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(c_in, base, 7, bias=False),
            instance_norm(base),
            nn.ReLU(),
        ]
        for k in range(downsamplings):
            c = base * 2**k
            layers += [nn.Conv2d(c, 2 * c, 3, 2, 1, bias=False), instance_norm(2 * c), nn.ReLU()]
        inner = base * 2**downsamplings
        layers += [ResnetBlock(inner) for _ in range(blocks)]
        for k in reversed(range(downsamplings)):
            c = base * 2**k
            layers += [*up_layers(2 * c, c, upsample), instance_norm(c), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(base, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(with_class_map(x, labels, self.class_map))  # [N, out_channels, H, W] in [-1, 1]


def patch_layers(side: int) -> int:
    """The PatchGAN depth whose receptive field is about half of ``side``: 32 -> 1 (16 px), 64 -> 2 (34 px),
    128 -> 3 (70 px, the reference's patch), 256 -> 4 (142 px)."""
    return max(1, int(math.log2(side)) - 4)


def patch_receptive_field(layers: int) -> int:
    """Receptive field in pixels of ``PatchDiscriminator(layers=...)``: its 4x4 convs, ``layers`` of stride 2
    and two of stride 1, walked back from one output pixel."""
    field = 1
    for stride in reversed([2] * layers + [1, 1]):
        field = (field - 1) * stride + 4
    return field


class PatchDiscriminator(nn.Module):
    """PatchGAN: ``forward(x [N, in_channels, H, W], labels [N] | None) -> [N, 1, h, w]`` logits, one per patch.

    ``layers`` stride-2 4x4 convs (widths ``base * 2^k`` capped at ``8 * base``), a stride-1 4x4 conv and a
    4x4 conv to one channel; each output pixel judges one ``patch_receptive_field(layers)``-pixel patch.
    pix2pix feeds it ``cat(input, output)``, CycleGAN one domain's images.
    """

    def __init__(self, in_channels: int, base: int = 64, layers: int = 3, num_classes: int = 0) -> None:
        super().__init__()
        self.class_map = ClassMap(num_classes) if num_classes else None
        self.num_classes, self.conditional = num_classes, num_classes > 0
        c_in = in_channels + (CLASS_MAP_CHANNELS if num_classes else 0)
        widths = [min(base * 2**k, 8 * base) for k in range(layers + 1)]
        net: list[nn.Module] = [nn.Conv2d(c_in, widths[0], 4, 2, 1), nn.LeakyReLU(0.2)]
        for k in range(1, layers):
            net += [nn.Conv2d(widths[k - 1], widths[k], 4, 2, 1, bias=False), instance_norm(widths[k])]
            net.append(nn.LeakyReLU(0.2))
        net += [nn.Conv2d(widths[layers - 1], widths[layers], 4, 1, 1, bias=False), instance_norm(widths[layers])]
        net += [nn.LeakyReLU(0.2), nn.Conv2d(widths[layers], 1, 4, 1, 1)]
        self.net = nn.Sequential(*net)
        self.receptive_field = patch_receptive_field(layers)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(with_class_map(x, labels, self.class_map))  # [N, 1, h, w]


def as_channels(x: Tensor, channels: int) -> Tensor:
    """Images [N, C, H, W] as [N, channels, H, W]: gray replicated, or RGB averaged to gray (the transfer metric's
    ``to_channels`` rule, on tensors, so gradients pass)."""
    if x.shape[1] == channels:
        return x
    if channels == 1:
        return x.mean(dim=1, keepdim=True)
    return x.expand(-1, channels, -1, -1)
