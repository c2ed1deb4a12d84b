"""``pix2pix`` (Isola et al. 2017): paired translation A -> B, with the reference implementation's defaults
(junyanz/pytorch-CycleGAN-and-pix2pix) as the documented starting point.

G = U-Net A -> B (dropout its only noise); D = PatchGAN on ``cat(a, b)`` (is ``b`` a real translation of ``a``?).
G's loss is the adversarial loss plus ``l1_weight`` (100) x L1(G(a), b); D's loss is the vanilla GAN loss (BCE on
logits) averaged over real and fake patches, as in the reference (which halves D's objective). Pure: no I/O, no Ray.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synthgen.models.image_blocks import PatchDiscriminator, UNetGenerator, patch_layers


@dataclass(frozen=True)
class Pix2PixOptions:
    g_channels: int = 64  # U-Net base width (the reference's ngf)
    d_channels: int = 64  # PatchGAN base width (ndf)
    d_layers: int = 0  # PatchGAN stride-2 layers; 0 = about half the image side (32 px: 1, 64: 2, 128: 3)
    dropout: float = 0.5  # U-Net decoder dropout, the generator's only noise (kept on to draw variations)
    l1_weight: float = 100.0  # weight of L1(G(a), b) against the adversarial loss (the reference's lambda_L1)
    class_conditional: bool = False  # feed the class to G and D, so an outline renders as its class


class Pix2Pix(nn.Module):
    """pix2pix's generator and discriminator for A (``in_channels``) -> B (``out_channels``) at ``side`` px."""

    def __init__(self, opts: Pix2PixOptions, in_channels: int, out_channels: int, side: int, num_classes: int = 0):
        super().__init__()
        classes = num_classes if opts.class_conditional else 0
        self.G = UNetGenerator(in_channels, out_channels, side, opts.g_channels, opts.dropout, num_classes=classes)
        layers = opts.d_layers or patch_layers(side)
        self.D = PatchDiscriminator(in_channels + out_channels, opts.d_channels, layers, num_classes=classes)
        self.opts = opts

    def d_loss(self, a: Tensor, b: Tensor, fake_b: Tensor, labels: Tensor | None = None) -> Tensor:
        """D's loss on real pairs ``(a, b)`` and fake pairs ``(a, fake_b)`` (fake_b detached here)."""
        real = self.D(torch.cat([a, b], dim=1), labels)  # [N, 1, h, w]
        fake = self.D(torch.cat([a, fake_b.detach()], dim=1), labels)
        loss_real = F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
        loss_fake = F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        return 0.5 * (loss_real + loss_fake)

    def g_loss(self, a: Tensor, b: Tensor, fake_b: Tensor, labels: Tensor | None = None) -> Tensor:
        """G's loss: fool D on ``(a, fake_b)`` plus ``l1_weight`` x L1 to the real ``b``."""
        fake = self.D(torch.cat([a, fake_b], dim=1), labels)
        adversarial = F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
        return adversarial + self.opts.l1_weight * F.l1_loss(fake_b, b)
