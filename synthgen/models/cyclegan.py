"""``cyclegan`` (Zhu et al. 2017): unpaired translation between A and B, with the reference implementation's
defaults (junyanz/pytorch-CycleGAN-and-pix2pix) as the documented starting point.

G_ab, G_ba = ResNet-block generators; D_a, D_b = PatchGANs on one domain each; least-squares GAN loss. G's loss adds
``cycle_weight`` (10) x L1 of both round trips and ``identity_weight`` (0.5) x ``cycle_weight`` x L1 of each
generator on its own output domain (it must leave such images alone); D sees fakes from an ``ImagePool`` of 50
earlier fakes (Shrivastava et al. 2017), which damps oscillation. Pure: no I/O, no Ray.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synthgen.models.image_blocks import PatchDiscriminator, ResnetGenerator, patch_layers


@dataclass(frozen=True)
class CycleGANOptions:
    g_channels: int = 64  # ResNet generator base width (ngf)
    g_blocks: int = 6  # residual blocks (the reference: 6 below 256 px, 9 at 256)
    d_channels: int = 64  # PatchGAN base width (ndf)
    d_layers: int = 0  # PatchGAN stride-2 layers; 0 = about half the image side
    cycle_weight: float = 10.0  # weight of the round-trip L1 losses (lambda_A = lambda_B)
    identity_weight: float = 0.5  # identity L1 weight, as a fraction of cycle_weight (lambda_identity)
    pool_size: int = 50  # earlier fakes D draws from (0 = none)


class CycleGAN(nn.Module):
    """CycleGAN's two generators and two discriminators between A (``channels[0]``) and B (``channels[1]``)."""

    def __init__(self, opts: CycleGANOptions, channels: tuple[int, int], side: int):
        super().__init__()
        c_a, c_b = channels
        layers = opts.d_layers or patch_layers(side)
        self.G_ab = ResnetGenerator(c_a, c_b, opts.g_channels, opts.g_blocks)
        self.G_ba = ResnetGenerator(c_b, c_a, opts.g_channels, opts.g_blocks)
        self.D_a = PatchDiscriminator(c_a, opts.d_channels, layers)
        self.D_b = PatchDiscriminator(c_b, opts.d_channels, layers)
        self.opts = opts

    def g_loss(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """G's loss on a batch of A and one of B (unpaired); returns (loss, fake_b, fake_a) for D's step.

        Identity terms apply only where the two domains have the same channels (an RGB image cannot pass
        through a gray-to-RGB generator unchanged).
        """
        o = self.opts
        fake_b, fake_a = self.G_ab(a), self.G_ba(b)  # [N, C_b, H, W], [N, C_a, H, W]
        loss = lsgan(self.D_b(fake_b), True) + lsgan(self.D_a(fake_a), True)
        loss = loss + o.cycle_weight * (F.l1_loss(self.G_ba(fake_b), a) + F.l1_loss(self.G_ab(fake_a), b))
        if o.identity_weight > 0 and a.shape[1] == b.shape[1]:
            identity = F.l1_loss(self.G_ab(b), b) + F.l1_loss(self.G_ba(a), a)
            loss = loss + o.identity_weight * o.cycle_weight * identity
        return loss, fake_b, fake_a

    def d_loss(self, a: Tensor, b: Tensor, fake_a: Tensor, fake_b: Tensor) -> Tensor:
        """Both D's least-squares losses (each halved, as in the reference) on real images and (pooled) fakes."""
        loss_a = 0.5 * (lsgan(self.D_a(a), True) + lsgan(self.D_a(fake_a.detach()), False))
        loss_b = 0.5 * (lsgan(self.D_b(b), True) + lsgan(self.D_b(fake_b.detach()), False))
        return loss_a + loss_b


def lsgan(logits: Tensor, real: bool) -> Tensor:
    """Least-squares GAN loss (Mao et al. 2017): mean (D(x) - target)^2 with target 1 for real, 0 for fake."""
    return F.mse_loss(logits, torch.full_like(logits, 1.0 if real else 0.0))


class ImagePool:
    """A buffer of up to ``size`` earlier fakes (CycleGAN's history of generated images).

    ``query(fakes)`` returns a batch for D: while the pool fills, the fakes themselves (and they are stored);
    then each image is, with probability 1/2, swapped for a random stored one (which the new image replaces),
    else passed through. Random choices come from ``generator``, so a seeded run repeats.
    """

    def __init__(self, size: int, generator: torch.Generator | None = None) -> None:
        self.size, self.images = size, []
        self.generator = generator or torch.Generator().manual_seed(0)

    def query(self, fakes: Tensor) -> Tensor:
        if self.size == 0:
            return fakes
        out = []
        for image in fakes.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator) < 0.5:
                k = int(torch.randint(len(self.images), (), generator=self.generator))
                out.append(self.images[k].clone())
                self.images[k] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)  # [N, C, H, W]
