"""``pixelda`` (Bousmalis et al. 2017, "Unsupervised Pixel-Level Domain Adaptation with GANs"): labelled A -> B
from A's images and noise, unpaired, with a task classifier that keeps A's labels readable.

G(a, z): the image ``a`` and a noise vector ``z`` (``noise_dim`` uniform numbers in [-1, 1], one image-sized map
through a linear layer, concatenated to ``a`` as one more channel) through a ResNet generator -> an image of B. The
noise is what lets one A image take many B looks (backgrounds, tints, textures): a new ``z`` per sample draws a new
variation.
D: a PatchGAN on B's images (least squares, as the reference PyTorch port, eriklindernoren/PyTorch-GAN ``pixelda``).
T: a classifier of A's classes (``SmallCNN``) trained with G on A's labels: on G(a, z) and on ``a`` itself (gray
replicated to B's channels), so G is pushed to translate in a way that keeps the item recognisable as its class;
B's labels are never used. T lives in the generator module and is updated with G by G's optimiser, as in the port;
sampling uses only ``translate``, which draws ``z`` from torch's global generator on the CPU (the caller seeds it:
``synthgen.translation``), so the same seed gives the same bytes on any device.

G's loss = ``adversarial_weight`` x LSGAN(D(G(a, z)), real) + ``task_weight`` x mean of T's two cross-entropies; the
defaults (1, 0.1) are the port's lambda_adv / lambda_task. ``mode_seeking_weight`` > 0 adds MSGAN's term (Mao et al.
2019, who applied it to pix2pix) on pairs G(a, z), G(a, z'): a G that ignores its noise pays for it. Pure: no I/O,
no Ray.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synthgen.errors import ConfigError
from synthgen.models.classifier import SmallCNN
from synthgen.models.image_blocks import PatchDiscriminator, ResnetGenerator, as_channels, patch_layers
from synthgen.models.losses import lsgan, mode_seeking_loss
from synthgen.models.registry import register_translation_model


@dataclass(frozen=True)
class PixelDAOptions:
    noise_dim: int = 10  # noise numbers per sample, model.z_dim is not used (PixelDA: 10, uniform in [-1, 1])
    g_channels: int = 64  # ResNet generator base width (PixelDA: 64)
    g_blocks: int = 6  # residual blocks (PixelDA: 6)
    # stride-2 convs before the blocks (PixelDA: 0, every layer at full resolution, so the item's shape passes
    # through; cyclegan's G has 2, whose transposed convs back up smear a 32 px item)
    g_downsamplings: int = 0
    d_channels: int = 64  # PatchGAN base width
    d_layers: int = 0  # PatchGAN stride-2 layers; 0 = about half the image side
    classifier_width: int = 32  # task classifier (SmallCNN) first-layer channels
    adversarial_weight: float = 1.0  # weight of G's least-squares adversarial loss (the port's lambda_adv)
    task_weight: float = 0.1  # weight of T's cross-entropy on G(a, z) and a in G's loss (the port's lambda_task)
    # MSGAN's mode-seeking term against a G that ignores z: half the batch is translated again with fresh noise and
    # G pays 1 / (image change / noise change) (0 = off; MSGAN uses 1 for image-to-image; a step costs more:
    # benchmarks/bench_cost.py --models pixelda,pixelda_ms)
    mode_seeking_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.noise_dim < 1:
            raise ConfigError(
                f"model.arch.noise_dim={self.noise_dim}: pixelda needs noise, set noise_dim >= 1 (PixelDA: 10)"
            )
        if self.adversarial_weight <= 0:
            raise ConfigError(
                f"model.arch.adversarial_weight={self.adversarial_weight}: without the adversarial loss nothing makes "
                "G's images look like B; set it > 0 (default 1)"
            )
        if not 0 <= self.g_downsamplings <= 3:
            raise ConfigError(f"model.arch.g_downsamplings={self.g_downsamplings} must be 0-3 (PixelDA: 0)")
        if self.mode_seeking_weight < 0:
            raise ConfigError(f"model.arch.mode_seeking_weight={self.mode_seeking_weight} must be >= 0 (0 = off)")
        if self.task_weight < 0:
            raise ConfigError(f"model.arch.task_weight={self.task_weight} must be >= 0 (default 0.1, 0 = no task loss)")


class PixelDAGenerator(nn.Module):
    """G and T. ``forward(a, labels, z) -> {fake_b, logits_fake, logits_a}``; ``translate(a, labels)`` -> G(a, z)
    with a fresh ``z`` from torch's global generator (drawn on the CPU)."""

    draws_noise = True  # sampling seeds torch's generator per chunk of ids: a new z per sample, reproducible

    def __init__(self, opts: PixelDAOptions, in_channels: int, out_channels: int, side: int, num_classes: int):
        super().__init__()
        self.noise_dim, self.side, self.out_channels = opts.noise_dim, side, out_channels
        self.noise_map = nn.Linear(opts.noise_dim, side * side)  # z -> one [H, W] channel beside the image
        self.net = ResnetGenerator(in_channels + 1, out_channels, opts.g_channels, opts.g_blocks, opts.g_downsamplings)
        self.task = SmallCNN(out_channels, num_classes, side, width=opts.classifier_width)
        self.num_classes, self.conditional = num_classes, False

    def generate(self, a: Tensor, z: Tensor) -> Tensor:
        """G(a [N, C_a, H, W], z [N, noise_dim]) -> [N, C_b, H, W] in [-1, 1]."""
        noise = self.noise_map(z).view(-1, 1, self.side, self.side)  # [N, 1, H, W]
        return self.net(torch.cat([a, noise], dim=1))

    def forward(self, a: Tensor, labels: Tensor, z: Tensor, z_again: Tensor | None = None) -> dict[str, Tensor]:
        """Every generator pass of a step in one call (a DDP wrapper syncs them together); ``z_again`` [P, noise_dim]
        translates the first P inputs once more (mode seeking's pairs)."""
        fake_b = self.generate(a, z)  # [N, C_b, H, W]
        out = {
            "fake_b": fake_b,
            "logits_fake": self.task(fake_b),  # [N, classes]
            "logits_a": self.task(as_channels(a, self.out_channels)),  # [N, classes]
        }
        if z_again is not None:
            out["fake_again"] = self.generate(a[: len(z_again)], z_again)  # [P, C_b, H, W]
        return out

    def translate(self, a: Tensor, labels: Tensor | None = None) -> Tensor:
        """A -> B, what sampling calls: one fresh ``z`` per row (the caller seeds torch's global generator)."""
        z = draw_noise(len(a), self.noise_dim).to(a.device)  # [N, noise_dim]
        return self.generate(a, z)


def draw_noise(n: int, noise_dim: int, generator: torch.Generator | None = None) -> Tensor:
    """[n, noise_dim] uniform in [-1, 1] on the CPU (PixelDA's noise), from ``generator`` or torch's global one."""
    return torch.rand(n, noise_dim, generator=generator) * 2 - 1


def build_pixelda(
    opts: PixelDAOptions, in_shape: tuple[int, int, int], out_shape: tuple[int, int, int], num_classes: int
) -> tuple[PixelDAGenerator, PatchDiscriminator]:
    """Fresh (G with its task classifier, D on B) from A's ``in_shape`` to B's ``out_shape``.

    Raises:
        ConfigError: A without classes (T learns A's labels).
    """
    if num_classes < 2:
        raise ConfigError(
            f"pixelda's task classifier learns domain A's labels, but data: has {num_classes} class(es): give A's "
            "labelled images as data: (an ImageFolder with one folder per class, or fashion-mnist)"
        )
    side = out_shape[-1]
    G = PixelDAGenerator(opts, in_shape[0], out_shape[0], side, num_classes)
    D = PatchDiscriminator(out_shape[0], opts.d_channels, opts.d_layers or patch_layers(side))
    return G, D


class PixelDAObjective:
    """What a training step asks of pixelda: unpaired batches (A's labels used, B's never); one generator pass
    (G and T, with ``z`` from the step's generator); D's LSGAN loss on B vs detached fakes; G's (and T's) loss."""

    paired = False  # a and b are independent draws of the two domains

    def __init__(self, opts: PixelDAOptions, seed: int = 0) -> None:
        self.opts = opts
        self.needs_classifier = False  # T is trained here, not handed over

    def generate(
        self, G: nn.Module, a: Tensor, b: Tensor, labels: Tensor, gen: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        z = draw_noise(len(a), self.opts.noise_dim, gen).to(a.device)  # [N, noise_dim]
        if self.opts.mode_seeking_weight <= 0:
            return G(a, labels, z)
        z_again = draw_noise(len(a) // 2, self.opts.noise_dim, gen).to(a.device)  # [P, noise_dim]
        return {**G(a, labels, z, z_again), "z": z, "z_again": z_again}

    def d_loss(self, D: nn.Module, a: Tensor, b: Tensor, labels: Tensor, out: dict[str, Tensor]) -> Tensor:
        return 0.5 * (lsgan(D(b), True) + lsgan(D(out["fake_b"].detach()), False))

    def g_loss(self, D: nn.Module, a: Tensor, b: Tensor, labels: Tensor, out: dict[str, Tensor]) -> Tensor:
        adversarial = lsgan(D(out["fake_b"]), True)
        task = 0.5 * (F.cross_entropy(out["logits_fake"], labels) + F.cross_entropy(out["logits_a"], labels))
        loss = self.opts.adversarial_weight * adversarial + self.opts.task_weight * task
        if "fake_again" in out:
            p = len(out["z_again"])
            seeking = mode_seeking_loss(out["fake_b"][:p], out["fake_again"], out["z"][:p], out["z_again"])
            loss = loss + self.opts.mode_seeking_weight * seeking
        return loss


register_translation_model("pixelda", PixelDAOptions, PixelDAObjective, paired=False)(build_pixelda)
