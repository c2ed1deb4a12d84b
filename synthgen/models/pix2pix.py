"""``pix2pix`` (Isola et al. 2017): paired translation A -> B, with the reference implementation's defaults
(junyanz/pytorch-CycleGAN-and-pix2pix) as the documented starting point.

G = U-Net A -> B (dropout its only noise); D = PatchGAN on ``cat(a, b)`` (is ``b`` a real translation of ``a``?).
G's loss is the adversarial loss plus ``l1_weight`` (100) x L1(G(a), b); D's loss is the vanilla GAN loss (BCE on
logits) averaged over real and fake patches, as in the reference (which halves D's objective). Pure: no I/O, no Ray.

Both networks take the pair's labels (ignored unless ``class_conditional``). The losses take D as an argument so
a training step can pass D's DDP wrapper for D's update and the bare, frozen D for G's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synthgen.models.image_blocks import PatchDiscriminator, UNetGenerator, patch_layers
from synthgen.models.registry import register_translation_model


@dataclass(frozen=True)
class Pix2PixOptions:
    g_channels: int = 64  # U-Net base width (the reference's ngf)
    d_channels: int = 64  # PatchGAN base width (ndf)
    d_layers: int = 0  # PatchGAN stride-2 layers; 0 = about half the image side (32 px: 1, 64: 2, 128: 3)
    dropout: float = 0.5  # U-Net decoder dropout, the generator's only noise (kept on to draw variations)
    l1_weight: float = 100.0  # weight of L1(G(a), b) against the adversarial loss (the reference's lambda_L1)
    class_conditional: bool = False  # feed the class to G and D, so an outline renders as its class


class Pix2PixGenerator(nn.Module):
    """``forward(a [N, C_a, H, W], labels [N]) -> fake b [N, C_b, H, W]``; ``translate`` is the same call."""

    def __init__(self, opts: Pix2PixOptions, in_channels: int, out_channels: int, side: int, num_classes: int):
        super().__init__()
        classes = num_classes if opts.class_conditional else 0
        self.unet = UNetGenerator(in_channels, out_channels, side, opts.g_channels, opts.dropout, num_classes=classes)
        self.num_classes, self.conditional = num_classes, opts.class_conditional

    def forward(self, a: Tensor, labels: Tensor) -> Tensor:
        return self.unet(a, labels if self.conditional else None)

    def translate(self, a: Tensor, labels: Tensor) -> Tensor:
        """A -> B, what sampling calls (dropout on in ``train()`` mode: a new variation per call)."""
        return self(a, labels)


class Pix2PixDiscriminator(nn.Module):
    """``forward(a, b, labels) -> [N, 1, h, w]`` logits: is each patch of ``b`` a real translation of ``a``?"""

    def __init__(self, opts: Pix2PixOptions, in_channels: int, out_channels: int, side: int, num_classes: int):
        super().__init__()
        classes = num_classes if opts.class_conditional else 0
        layers = opts.d_layers or patch_layers(side)
        self.patch = PatchDiscriminator(in_channels + out_channels, opts.d_channels, layers, num_classes=classes)
        self.conditional = opts.class_conditional

    def forward(self, a: Tensor, b: Tensor, labels: Tensor) -> Tensor:
        return self.patch(torch.cat([a, b], dim=1), labels if self.conditional else None)


def build_pix2pix(
    opts: Pix2PixOptions, in_shape: tuple[int, int, int], out_shape: tuple[int, int, int], num_classes: int
) -> tuple[Pix2PixGenerator, Pix2PixDiscriminator]:
    """Fresh (G, D) translating images of ``in_shape`` (C, H, W) into ``out_shape``."""
    side = in_shape[-1]
    return (
        Pix2PixGenerator(opts, in_shape[0], out_shape[0], side, num_classes),
        Pix2PixDiscriminator(opts, in_shape[0], out_shape[0], side, num_classes),
    )


def d_loss(D: nn.Module, a: Tensor, b: Tensor, fake_b: Tensor, labels: Tensor) -> Tensor:
    """D's loss on real pairs ``(a, b)`` and fake pairs ``(a, fake_b)`` (``fake_b`` is detached here)."""
    real, fake = D(a, b, labels), D(a, fake_b.detach(), labels)  # [N, 1, h, w] each
    loss_real = F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
    loss_fake = F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    return 0.5 * (loss_real + loss_fake)


def g_loss(D: nn.Module, a: Tensor, b: Tensor, fake_b: Tensor, labels: Tensor, l1_weight: float) -> Tensor:
    """G's loss: fool D on ``(a, fake_b)`` plus ``l1_weight`` x L1 to the real ``b``."""
    fake = D(a, fake_b, labels)
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake)) + l1_weight * F.l1_loss(fake_b, b)


class Pix2PixObjective:
    """What a training step asks of pix2pix: its batches are paired; one generator pass; D's and G's losses."""

    paired = True  # row i of b is the translation of row i of a

    def __init__(self, opts: Pix2PixOptions, seed: int = 0) -> None:
        self.opts = opts
        self.needs_classifier = False  # no loss of pix2pix asks for a domain classifier

    def generate(
        self, G: nn.Module, a: Tensor, b: Tensor, labels: Tensor, gen: torch.Generator | None = None
    ) -> Tensor:
        return G(a, labels)  # [N, C_b, H, W]

    def d_loss(self, D: nn.Module, a: Tensor, b: Tensor, labels: Tensor, fake_b: Tensor) -> Tensor:
        return d_loss(D, a, b, fake_b, labels)

    def g_loss(self, D: nn.Module, a: Tensor, b: Tensor, labels: Tensor, fake_b: Tensor) -> Tensor:
        return g_loss(D, a, b, fake_b, labels, self.opts.l1_weight)


register_translation_model("pix2pix", Pix2PixOptions, Pix2PixObjective, paired=True)(build_pix2pix)
