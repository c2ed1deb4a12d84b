"""``cyclegan`` (Zhu et al. 2017): unpaired translation between A and B, with the reference implementation's
defaults (junyanz/pytorch-CycleGAN-and-pix2pix) as the documented starting point.

G_ab, G_ba = ResNet-block generators; D_a, D_b = PatchGANs on one domain each; least-squares GAN loss. G's loss adds
``cycle_weight`` (10) x L1 of both round trips and ``identity_weight`` (0.5) x ``cycle_weight`` x L1 of each
generator on its own output domain (it must leave such images alone); D sees fakes from an ``ImagePool`` of 50
earlier fakes (Shrivastava et al. 2017), which damps oscillation. Pure: no I/O, no Ray.

``semantic_weight`` > 0 adds CyCADA's semantic consistency (Hoffman et al. 2018): a frozen classifier ``f`` trained
on A's labels (the training loop hands it over; the objective never loads anything) must give G_ab(a) the label it
gives a, and G_ba(b) the label it gives b: cross-entropy against f's own argmax on the inputs, as in CyCADA. f
takes A's channels, so B images (real or translated) reach it averaged to gray (or a gray B replicated to RGB).

The two generators are one module whose ``forward(a, b)`` runs every generator pass of a step (so a DDP wrapper
sees all of them in one call) and whose ``translate(a)`` is A -> B; likewise the two discriminators.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synthgen.errors import ConfigError
from synthgen.models.image_blocks import (
    UPSAMPLE_MODES,
    PatchDiscriminator,
    ResnetGenerator,
    as_channels,
    patch_layers,
)
from synthgen.models.losses import lsgan
from synthgen.models.registry import register_translation_model


@dataclass(frozen=True)
class CycleGANOptions:
    g_channels: int = 64  # ResNet generator base width (ngf)
    g_blocks: int = 6  # residual blocks (the reference: 6 below 256 px, 9 at 256)
    # stride-2 convs before the blocks (the reference: 2, so its blocks run at 64x64 on 256 px images; at 32 px,
    # 2 leaves them 8x8 and 1 keeps them at 16x16 for about the same compute)
    g_downsamplings: int = 2
    # how G goes back up: transpose (the reference's stride-2 transposed conv) or resize (nearest x2 + 3x3 conv,
    # Odena et al. 2016: no checkerboard pattern)
    g_upsample: str = "transpose"
    d_channels: int = 64  # PatchGAN base width (ndf)
    d_layers: int = 0  # PatchGAN stride-2 layers; 0 = about half the image side
    cycle_weight: float = 10.0  # weight of the round-trip L1 losses (lambda_A = lambda_B)
    identity_weight: float = 0.5  # identity L1 weight, as a fraction of cycle_weight (lambda_identity)
    pool_size: int = 50  # earlier fakes D draws from (0 = none)
    # CyCADA's semantic consistency: weight of the cross-entropy that keeps a frozen classifier of domain A (its judge)
    # giving G_ab(a) the label it gives a, and G_ba(b) the one it gives b (0 = off; CyCADA uses 1)
    semantic_weight: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.g_downsamplings <= 3:
            raise ConfigError(f"model.arch.g_downsamplings={self.g_downsamplings} must be 0-3 (the reference: 2)")
        if self.g_upsample not in UPSAMPLE_MODES:
            raise ConfigError(
                f"model.arch.g_upsample={self.g_upsample!r}: expected one of {', '.join(UPSAMPLE_MODES)} "
                "(transpose = the reference)"
            )


class CycleGenerators(nn.Module):
    """G_ab and G_ba. ``forward(a, b)`` -> dict of fake_b, fake_a, rec_a, rec_b (+ idt_b, idt_a when the domains
    have the same channels); ``translate(a, labels)`` -> G_ab(a) (labels unused: CycleGAN never sees them)."""

    def __init__(self, opts: CycleGANOptions, channels: tuple[int, int]):
        super().__init__()
        c_a, c_b = channels
        shape = (opts.g_channels, opts.g_blocks, opts.g_downsamplings)
        self.G_ab = ResnetGenerator(c_a, c_b, *shape, upsample=opts.g_upsample)
        self.G_ba = ResnetGenerator(c_b, c_a, *shape, upsample=opts.g_upsample)
        self.identity = opts.identity_weight > 0 and c_a == c_b  # an RGB image cannot pass a gray -> RGB G unchanged
        self.num_classes, self.conditional = 0, False

    def forward(self, a: Tensor, b: Tensor) -> dict[str, Tensor]:
        fake_b, fake_a = self.G_ab(a), self.G_ba(b)  # [N, C_b, H, W], [N, C_a, H, W]
        out = {"fake_b": fake_b, "fake_a": fake_a, "rec_a": self.G_ba(fake_b), "rec_b": self.G_ab(fake_a)}
        if self.identity:
            out.update(idt_b=self.G_ab(b), idt_a=self.G_ba(a))
        return out

    def translate(self, a: Tensor, labels: Tensor | None = None) -> Tensor:
        """A -> B, what sampling calls."""
        return self.G_ab(a)


class CycleDiscriminators(nn.Module):
    """D_a and D_b: ``forward(a, b) -> (D_a(a), D_b(b))`` patch logits."""

    def __init__(self, opts: CycleGANOptions, channels: tuple[int, int], side: int):
        super().__init__()
        layers = opts.d_layers or patch_layers(side)
        self.D_a = PatchDiscriminator(channels[0], opts.d_channels, layers)
        self.D_b = PatchDiscriminator(channels[1], opts.d_channels, layers)

    def forward(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        return self.D_a(a), self.D_b(b)


def build_cyclegan(
    opts: CycleGANOptions, in_shape: tuple[int, int, int], out_shape: tuple[int, int, int], num_classes: int = 0
) -> tuple[CycleGenerators, CycleDiscriminators]:
    """Fresh (generators, discriminators) between images of ``in_shape`` (A) and ``out_shape`` (B)."""
    channels = (in_shape[0], out_shape[0])
    return CycleGenerators(opts, channels), CycleDiscriminators(opts, channels, in_shape[-1])


def g_loss(D: nn.Module, a: Tensor, b: Tensor, out: dict[str, Tensor], opts: CycleGANOptions) -> Tensor:
    """Both generators' loss from their outputs ``out`` (``CycleGenerators.forward``), D frozen by the caller."""
    d_fake_a, d_fake_b = D(out["fake_a"], out["fake_b"])
    loss = lsgan(d_fake_b, True) + lsgan(d_fake_a, True)
    loss = loss + opts.cycle_weight * (F.l1_loss(out["rec_a"], a) + F.l1_loss(out["rec_b"], b))
    if "idt_b" in out:
        identity = F.l1_loss(out["idt_b"], b) + F.l1_loss(out["idt_a"], a)
        loss = loss + opts.identity_weight * opts.cycle_weight * identity
    return loss


def d_loss(D: nn.Module, a: Tensor, b: Tensor, fake_a: Tensor, fake_b: Tensor) -> Tensor:
    """Both discriminators' least-squares losses (each halved, as in the reference) on real images and fakes."""
    real_a, real_b = D(a, b)
    pooled_a, pooled_b = D(fake_a.detach(), fake_b.detach())
    return 0.5 * (lsgan(real_a, True) + lsgan(pooled_a, False)) + 0.5 * (lsgan(real_b, True) + lsgan(pooled_b, False))


def semantic_loss(classifier: nn.Module, a: Tensor, b: Tensor, out: dict[str, Tensor]) -> Tensor:
    """CyCADA's semantic consistency: CE(f(G_ab(a)), argmax f(a)) + CE(f(G_ba(b)), argmax f(b)), f frozen, taking
    A's channels. Gradients reach the generators through ``out`` only."""
    c_a = a.shape[1]
    with torch.no_grad():
        label_a = classifier(a).argmax(dim=1)  # [N]
        label_b = classifier(as_channels(b, c_a)).argmax(dim=1)  # [N]
    keep_a = F.cross_entropy(classifier(as_channels(out["fake_b"], c_a)), label_a)
    keep_b = F.cross_entropy(classifier(out["fake_a"]), label_b)
    return keep_a + keep_b


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


class CycleGANObjective:
    """What a training step asks of cyclegan: unpaired batches; every generator pass in one call; D's losses on
    fakes drawn through two image pools (seeded by ``seed``, so a run repeats); G's loss (+ the semantic term, with
    the frozen A-classifier the training loop sets as ``classifier`` when ``needs_classifier``)."""

    paired = False  # a and b are independent draws of the two domains

    def __init__(self, opts: CycleGANOptions, seed: int = 0) -> None:
        self.opts = opts
        self.needs_classifier = opts.semantic_weight > 0  # the loop must set ``classifier`` before a step
        self.classifier: nn.Module | None = None
        self.pool_a = ImagePool(opts.pool_size, torch.Generator().manual_seed(seed))
        self.pool_b = ImagePool(opts.pool_size, torch.Generator().manual_seed(seed + 1))

    def generate(
        self, G: nn.Module, a: Tensor, b: Tensor, labels: Tensor, gen: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        return G(a, b)

    def d_loss(self, D: nn.Module, a: Tensor, b: Tensor, labels: Tensor, out: dict[str, Tensor]) -> Tensor:
        return d_loss(D, a, b, self.pool_a.query(out["fake_a"]), self.pool_b.query(out["fake_b"]))

    def g_loss(self, D: nn.Module, a: Tensor, b: Tensor, labels: Tensor, out: dict[str, Tensor]) -> Tensor:
        loss = g_loss(D, a, b, out, self.opts)
        if self.needs_classifier:
            if self.classifier is None:
                raise RuntimeError("semantic_weight > 0 but no classifier was set on the objective")
            loss = loss + self.opts.semantic_weight * semantic_loss(self.classifier, a, b, out)
        return loss


register_translation_model("cyclegan", CycleGANOptions, CycleGANObjective, paired=False)(build_cyclegan)
