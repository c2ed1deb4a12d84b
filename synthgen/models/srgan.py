"""``srgan`` (Ledig et al. 2017): super-resolution, a low-resolution image (domain A) -> the image at ``factor`` x
its side (domain B), trained on pairs of an image and its antialiased downsample (``data.pairs: downsample``).

G = SRResNet: a 9x9 conv, ``g_blocks`` residual blocks with a long skip, ``log2(factor)`` x2 pixel-shuffle stages,
a 9x9 conv to the image (``upsampler: stages``). ``upsampler: subpixel`` is ESPCN's (Shi et al. 2016) output
instead: one 3x3 conv at the input side to C x factor^2 channels, shuffled into the image, so no conv runs at the
output side, where ``stages`` spends most of its time (its second shuffle conv and the 9x9 conv at 128 px).
D = a PatchGAN on B's images (``synthgen.models.image_blocks``). G's loss is
``l1_weight`` x L1(G(a), b) + ``feature_weight`` x the feature loss + ``adversarial_weight`` x the non-saturating
GAN loss; ``adversarial_weight = feature_weight = 0`` is the L1-trained SRResNet, the paper's PSNR-oriented row.

Differences from the paper, and why:
- No batch norm in G (EDSR, Lim et al. 2017): an image's upscale must not depend on the other images of its batch,
  so sampling stays byte-identical for any actor count or batch size.
- A global skip over bicubic upsampling (VDSR, Kim et al. 2016), with G's last conv initialised to zero: an
  untrained G is exactly bicubic, and training learns the residual, which converges far faster on a CPU.
- The feature loss compares feature maps of a network that can be had offline, not VGG (no weights can be
  downloaded here): the frozen classifier the training loop hands over (the data set's judge, ``SmallCNN``), its
  second conv block's activations. L1 instead of the paper's MSE for the pixel loss (EDSR, ESRGAN).
- ``degrade_blur`` / ``degrade_noise``: the low-resolution inputs can be degraded in training (Gaussian blur of a
  random sigma, Gaussian noise of a random std), the conditioning augmentation cascaded diffusion found critical
  when the upscaler is applied to a generator's output rather than to real downsamples.

Pure: no I/O, no Ray.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synthgen.errors import ConfigError
from synthgen.models.image_blocks import PatchDiscriminator, patch_layers
from synthgen.models.registry import register_translation_model

FACTORS = (2, 4)  # the upscaling factors G is built for
# SRResNet's x2 shuffle stages + 9x9 output conv; ESPCN's one conv at the input side, then one shuffle
UPSAMPLERS = ("stages", "subpixel")


@dataclass(frozen=True)
class SRGANOptions:
    factor: int = 4  # upscaling factor, 2 or 4: B's side is factor x A's (data.pairs: downsample derives A)
    g_channels: int = 64  # SRResNet width (the paper: 64)
    g_blocks: int = 16  # SRResNet residual blocks (the paper: 16)
    # how G reaches the output side: "stages" (SRResNet: conv + x2 shuffle per stage, then a 9x9 conv there) or
    # "subpixel" (ESPCN: one conv to C x factor^2 channels at the input side, one shuffle; far cheaper to sample)
    upsampler: str = "stages"
    d_channels: int = 64  # PatchGAN base width
    d_layers: int = 0  # PatchGAN stride-2 layers; 0 = about half B's side
    l1_weight: float = 1.0  # pixel L1(G(a), b)
    # feature loss: MSE of the frozen judge's conv feature maps of G(a) and b (the paper's VGG loss); 0 = off
    feature_weight: float = 1.0
    adversarial_weight: float = 1.0e-3  # the non-saturating GAN loss (the paper's 1e-3); 0 = no discriminator
    degrade_blur: float = 0.0  # training only: blur each input by a Gaussian of sigma ~ U(0, this) pixels; 0 = off
    degrade_noise: float = 0.0  # training only: add Gaussian noise of std ~ U(0, this) (pixels in [-1, 1]); 0 = off

    def __post_init__(self) -> None:
        if self.factor not in FACTORS:
            raise ConfigError(f"model.arch.factor={self.factor!r} is invalid: srgan upscales by one of {list(FACTORS)}")
        if self.upsampler not in UPSAMPLERS:
            raise ConfigError(
                f"model.arch.upsampler={self.upsampler!r} is invalid: one of {list(UPSAMPLERS)} "
                "(subpixel is the cheap one to sample)"
            )
        if min(self.degrade_blur, self.degrade_noise, self.l1_weight, self.feature_weight, self.adversarial_weight) < 0:
            raise ConfigError("srgan's loss weights and degrade_blur / degrade_noise must be >= 0")


class ResidualBlock(nn.Module):
    """conv3x3 - PReLU - conv3x3, added to its input (SRResNet's block without batch norm)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.PReLU(channels), nn.Conv2d(channels, channels, 3, padding=1)
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """``forward(a [N, C, h, w], labels=None) -> [N, C, factor*h, factor*w]`` in [-1, 1]: bicubic(a) + a learned
    residual; ``translate`` is the same call (labels unused: super-resolution does not need the class)."""

    def __init__(self, opts: SRGANOptions, channels: int) -> None:
        super().__init__()
        width, self.factor = opts.g_channels, opts.factor
        self.head = nn.Sequential(nn.Conv2d(channels, width, 9, padding=4), nn.PReLU(width))
        self.body = nn.Sequential(
            *[ResidualBlock(width) for _ in range(opts.g_blocks)], nn.Conv2d(width, width, 3, padding=1)
        )
        if opts.upsampler == "subpixel":  # every conv at the input side; the last one's channels become pixels
            self.up: nn.Module = nn.Identity()
            self.tail: nn.Module = nn.Sequential(
                nn.Conv2d(width, channels * opts.factor**2, 3, padding=1), nn.PixelShuffle(opts.factor)
            )
            last = self.tail[0]
        else:
            up: list[nn.Module] = []
            for _ in range(int(math.log2(opts.factor))):  # each stage: 4x the channels, shuffled into 2x the side
                up += [nn.Conv2d(width, 4 * width, 3, padding=1), nn.PixelShuffle(2), nn.PReLU(width)]
            self.up = nn.Sequential(*up)
            self.tail = last = nn.Conv2d(width, channels, 9, padding=4)
        nn.init.zeros_(last.weight)  # an untrained G is bicubic upsampling exactly
        nn.init.zeros_(last.bias)
        self.num_classes, self.conditional = 0, False

    def forward(self, a: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.head(a)  # [N, width, h, w]
        h = self.up(h + self.body(h))  # stages: [N, width, factor*h, factor*w]; subpixel: [N, width, h, w]
        return (bicubic(a, self.factor) + self.tail(h)).clamp(-1.0, 1.0)  # [N, C, factor*h, factor*w]

    def translate(self, a: Tensor, labels: Tensor | None = None) -> Tensor:
        """A -> B, what sampling calls."""
        return self(a, labels)


class SRDiscriminator(nn.Module):
    """``forward(b [N, C, H, W]) -> [N, 1, h, w]`` patch logits: is each patch of ``b`` a real image's?"""

    def __init__(self, opts: SRGANOptions, channels: int, side: int) -> None:
        super().__init__()
        self.patch = PatchDiscriminator(channels, opts.d_channels, opts.d_layers or patch_layers(side))

    def forward(self, b: Tensor) -> Tensor:
        return self.patch(b)


def bicubic(a: Tensor, factor: int) -> Tensor:
    """Bicubic upsampling of ``a`` [N, C, h, w] by ``factor``: the baseline every upscaler is measured against."""
    return F.interpolate(a, scale_factor=factor, mode="bicubic", align_corners=False)


def build_srgan(
    opts: SRGANOptions, in_shape: tuple[int, int, int], out_shape: tuple[int, int, int], num_classes: int = 0
) -> tuple[SRResNet, SRDiscriminator]:
    """Fresh (G, D) upscaling images of ``in_shape`` (C, h, w) to ``out_shape`` (C, factor*h, factor*w)."""
    return SRResNet(opts, in_shape[0]), SRDiscriminator(opts, out_shape[0], out_shape[-1])


def degrade(a: Tensor, opts: SRGANOptions, gen: torch.Generator) -> Tensor:
    """``a`` [N, C, h, w] blurred and noised per image, by draws from ``gen`` (sigma ~ U(0, degrade_blur), std ~
    U(0, degrade_noise)); ``a`` itself when both are 0."""
    if opts.degrade_blur <= 0 and opts.degrade_noise <= 0:
        return a
    n = a.shape[0]
    sigma = torch.rand(n, generator=gen) * opts.degrade_blur  # [N]
    std = torch.rand(n, generator=gen) * opts.degrade_noise  # [N]
    noise = torch.randn(a.shape, generator=gen)  # [N, C, h, w]
    out = a
    if opts.degrade_blur > 0:
        import kornia

        sigmas = sigma.clamp_min(1e-3).view(n, 1).expand(n, 2).to(a.device)  # [N, 2]: per-image (sigma_y, sigma_x)
        out = kornia.filters.gaussian_blur2d(out, (5, 5), sigmas, border_type="reflect")
    return out + (std.view(n, 1, 1, 1) * noise).to(a.device)


def feature_maps(classifier: nn.Module, x: Tensor) -> Tensor:
    """The frozen ``SmallCNN``'s second conv block activations [N, 2w, H/2, W/2] of ``x`` in [-1, 1]: the feature
    space of the feature loss (before its last pooling, so they keep where things are)."""
    return classifier.body[:6](x.contiguous(memory_format=torch.channels_last))


class SRGANObjective:
    """What a training step asks of srgan: paired batches (a = b downsampled); one generator pass on the degraded
    inputs; D's loss on real and upscaled images; G's L1 + feature + adversarial loss (the frozen judge the training
    loop sets as ``classifier`` when ``needs_classifier``)."""

    paired = True  # row i of b is the image whose downsample is row i of a

    def __init__(self, opts: SRGANOptions, seed: int = 0) -> None:
        self.opts = opts
        self.needs_classifier = opts.feature_weight > 0
        self.classifier: nn.Module | None = None

    def generate(
        self, G: nn.Module, a: Tensor, b: Tensor, labels: Tensor, gen: torch.Generator | None = None
    ) -> Tensor:
        """G(degraded a) [N, C, H, W]; ``gen`` draws the degradation (the step's own, so a resumed run repeats it)."""
        return G(degrade(a, self.opts, gen or torch.Generator().manual_seed(0)), labels)

    def d_loss(self, D: nn.Module, a: Tensor, b: Tensor, labels: Tensor, fake_b: Tensor) -> Tensor:
        if self.opts.adversarial_weight <= 0:  # the L1 / feature-only SRResNet: D is not trained
            return fake_b.new_zeros(()) + 0.0 * sum(p.sum() for p in D.parameters())
        real, fake = D(b), D(fake_b.detach())  # [N, 1, h, w] each
        loss_real = F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
        return 0.5 * (loss_real + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))

    def g_loss(self, D: nn.Module, a: Tensor, b: Tensor, labels: Tensor, fake_b: Tensor) -> Tensor:
        o = self.opts
        loss = o.l1_weight * F.l1_loss(fake_b, b)
        if o.adversarial_weight > 0:
            logits = D(fake_b)
            loss = loss + o.adversarial_weight * F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        if self.needs_classifier:
            if self.classifier is None:
                raise RuntimeError("feature_weight > 0 but no classifier was set on the objective")
            target = feature_maps(self.classifier, b).detach()
            loss = loss + o.feature_weight * F.mse_loss(feature_maps(self.classifier, fake_b), target)
        return loss


register_translation_model("srgan", SRGANOptions, SRGANObjective, paired=True)(build_srgan)
