"""``stylegan``: a StyleGAN2-style class-conditional generator and a residual projection discriminator.

Generator (Karras et al. 2020, conditional as in StyleGAN2-ADA):
    mapping    (z, y) -> w [N, w_dim]: an MLP on [norm(z), norm(embed(y))] with a 0.01 learning-rate multiplier
    synthesis  w -> image: a learned constant 4x4 input, then per resolution 8..R: x2 bilinear upsample,
               two modulated/demodulated 3x3 convs (styles = affine(w)), per-pixel noise with a learned
               strength, and a toRGB skip output summed into the upsampled image; tanh at the end.
The class enters only through w, so every W-space operation (truncation toward a class's mean w,
inversion in W or W+) needs the label only to pick the mean, not in synthesis.

W space:
    w = G.mapping(z, y)                     # [N, w_dim]
    x = G.synthesis(w)                      # [N, C, H, W] in [-1, 1]; also takes W+ codes [N, G.num_ws, w_dim]
    w_mean = G.class_mean_w(y)              # [N, w_dim]: each label's mean w over fixed-seed z (deterministic)
    x = G.synthesis(G.truncate(w, y, psi))  # truncation toward the class mean (the W-space trick)

Output (``model.arch.output``): ``tanh`` (the default) squashes the summed skip outputs like every other synthgen
generator; ``linear`` leaves them unsquashed in training mode and clamps them to [-1, 1] in eval mode, as
StyleGAN2 does (no tanh), so D's gradient reaches pixels that a tanh would saturate (a black background). The
README's stylegan section has what each gave on the 32 px benchmarks.

Determinism: in eval mode each StyleConv adds its stored ``noise_const`` buffer (noise_mode 'const'), so an
image is a pure function of (weights, z, y), and no layer mixes samples (no batch norm; the modulated
conv is one group per sample). Training mode draws fresh noise.

Class fade-in (``cond_fade_start`` / ``cond_fade_steps``, after Shahbazi et al. 2023, "Collapse by
Conditioning"): the class embedding entering the mapping and D's projection term are both scaled by a
strength that is 0 until ``cond_fade_start`` and ramps linearly to 1 over ``cond_fade_steps``, so the pair
first learns the data's shared variety unconditionally and only then splits it by class. The train step sets
the strength (``set_training_step``); it is a buffer, so the EMA generator and every checkpoint carry it.

InfoGAN codes (``model.codes``, ``synthgen.models.codes``): ``G.mapping(z, y, codes)`` takes them next to z (so
they live in w, and every W-space operation carries them), and D gets a Q head on ``phi``
(``D(x, y, with_codes=True) -> (logits, q)``). Without codes both networks are exactly as described here.

Discriminator: fromRGB 1x1 at R, residual blocks (two 3x3 convs, average-pool downsampling, a 1x1 skip)
down to 4x4, minibatch stddev (class-blind groups of ``mbstd_group``, or with ``mbstd_class_chunk`` the std
among same-class samples of a chunk, which sees within-class collapse), a 3x3 conv, an FC layer to
features ``phi`` [N, ch4], and
``logit = w . phi + b + <V[y], phi> / sqrt(ch4)`` (projection, Miyato & Koyama 2018). No spectral norm:
StyleGAN's D is regularised by R1 instead.

Training recipe (StyleGAN2): non-saturating loss with lazy R1 on D, e.g.
``--set model.name=stylegan --set model.loss=bce --set model.r1_gamma=0.01 --set data.resolution=32``
(StyleGAN2-ADA's heuristic: r1_gamma = 0.0002 * R**2 / global batch); DiffAugment and LeCam work as for
the other models.

Widths: a layer at side r has ``min(channel_base // r, channel_max)`` channels (at least 8); the defaults
give 128@4, 64@8, 32@16, 16@32, small enough for CPU training. Raise channel_base (StyleGAN2: 16384 or
more) on GPUs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synthgen.errors import ConfigError
from synthgen.models.blocks import require_labels
from synthgen.models.codes import QHead, code_dim
from synthgen.models.registry import register_model
from synthgen.models.stylegan_layers import (
    DBlock,
    EqualConv2d,
    EqualLinear,
    MappingNetwork,
    StyleConv,
    ToRGB,
    class_minibatch_stddev,
    minibatch_stddev,
    upsample2x,
)

SUPPORTED_RESOLUTIONS = (32, 64, 128)
MIN_CHANNELS = 8  # no layer thinner than this, whatever channel_base / side gives
OUTPUTS = ("tanh", "linear")  # model.arch.output choices
MEAN_W_SAMPLES = 512  # z draws averaged per class by class_mean_w
# The summed skip outputs start with std ~2 at every resolution; halving them keeps the final tanh out of
# saturation at initialisation (std ~1), where its gradient would be small.
RGB_GAIN = 0.5


@dataclass(frozen=True)
class StyleGANOptions:
    """``model.arch`` of stylegan (small CPU-friendly defaults; see the width rule in the module docstring)."""

    channel_base: int = 512  # a layer at side r has channel_base // r channels (StyleGAN2 uses 16384-32768)
    channel_max: int = 128  # cap on any layer's channels (StyleGAN2 uses 512)
    w_dim: int = 256  # size of the intermediate latent w (the style vector)
    mapping_layers: int = 2  # FC layers of the mapping network (StyleGAN2: 8; StyleGAN2-ADA for CIFAR: 2)
    mapping_lr_mul: float = 0.01  # learning-rate multiplier of the mapping network (keeps W stable)
    mbstd_group: int = 4  # minibatch-stddev group size in D (consecutive samples; 1 = off in effect)
    # D's mbstd compares samples of the same class within chunks of this many (0 = the plain, class-blind mbstd)
    mbstd_class_chunk: int = 0
    # G's last op: tanh | linear (StyleGAN2: no squashing while training, clamped to [-1, 1] in eval mode)
    output: str = "tanh"
    # training step at which the class condition starts to fade in (with cond_fade_steps > 0; before it, unconditional)
    cond_fade_start: int = 0
    # steps over which the class condition fades in from 0 to full strength (0 = conditional from the first step)
    cond_fade_steps: int = 0

    def __post_init__(self) -> None:
        for key in ("channel_base", "channel_max", "w_dim", "mapping_layers", "mbstd_group"):
            if getattr(self, key) < 1:
                raise ConfigError(
                    f"model.arch.{key}={getattr(self, key)!r} is invalid: must be >= 1, "
                    f"e.g. {getattr(StyleGANOptions, key)}"
                )
        for key in ("cond_fade_start", "cond_fade_steps"):
            if getattr(self, key) < 0:
                raise ConfigError(
                    f"model.arch.{key}={getattr(self, key)!r} is invalid: must be >= 0 "
                    "(e.g. cond_fade_start=1000 cond_fade_steps=2000; cond_fade_steps=0 = off)"
                )
        if self.mbstd_class_chunk < 0:
            raise ConfigError(
                f"model.arch.mbstd_class_chunk={self.mbstd_class_chunk!r} is invalid: must be >= 0 "
                "(0 = off; e.g. 32, the per-worker batch size)"
            )
        if self.output not in OUTPUTS:
            raise ConfigError(
                f"model.arch.output={self.output!r} is invalid: choose one of {list(OUTPUTS)} "
                "(tanh unless you are comparing them)"
            )
        if not self.mapping_lr_mul > 0.0:
            raise ConfigError(f"model.arch.mapping_lr_mul={self.mapping_lr_mul!r} is invalid: must be > 0, e.g. 0.01")

    def check_with_train(self, train: Any) -> None:
        """Checks that need the train section (``ExperimentConfig.validate`` calls this).

        Raises:
            ConfigError: a class-mbstd chunk that does not divide ``train.batch_size`` (its chunks would mix the
                real and fake halves), or a class fade-in that ends after ``train.steps``.
        """
        bs, chunk = train.batch_size, self.mbstd_class_chunk
        if chunk and bs % chunk:
            raise ConfigError(
                f"model.arch.mbstd_class_chunk={chunk!r} is invalid: must be a divisor of "
                f"train.batch_size={bs} (so its chunks keep real and fake images apart), e.g. {bs}, "
                "or 0 for the class-blind minibatch stddev"
            )
        end = self.cond_fade_start + self.cond_fade_steps
        if self.cond_fade_steps and end > train.steps:
            raise ConfigError(
                f"model.arch.cond_fade_start + cond_fade_steps = {end} is after train.steps="
                f"{train.steps}: the class condition would never reach full strength; end the fade "
                "earlier or raise train.steps"
            )

    def cond_strength_at(self, step: int) -> float:
        """How strongly the class condition acts at training ``step``: 0 before ``cond_fade_start``, then a linear
        ramp to 1 over ``cond_fade_steps`` (1 at every step when the fade is off)."""
        if self.cond_fade_steps == 0:
            return 1.0
        return min(max((step - self.cond_fade_start) / self.cond_fade_steps, 0.0), 1.0)

    def channels(self, side: int) -> int:
        """Channels of a layer working at ``side`` px."""
        return max(MIN_CHANNELS, min(self.channel_base // side, self.channel_max))


class SynthesisNetwork(nn.Module):
    """``w [N, w_dim]`` (or W+ ``[N, num_ws, w_dim]``) -> image ``[N, C, H, W]`` in [-1, 1]."""

    def __init__(self, w_dim: int, image_shape: tuple[int, int, int], opts: StyleGANOptions) -> None:
        super().__init__()
        c, size, _ = image_shape
        ch4 = opts.channels(4)
        self.const = nn.Parameter(torch.randn(ch4, 4, 4))  # [C4, 4, 4]: the learned constant input
        self.conv4 = StyleConv(ch4, ch4, w_dim, 4, up=False)
        self.rgb4 = ToRGB(ch4, c, w_dim)
        self.blocks = nn.ModuleList()
        side = 8
        while side <= size:
            cin, cout = opts.channels(side // 2), opts.channels(side)
            self.blocks.append(
                nn.ModuleDict(
                    {
                        "conv0": StyleConv(cin, cout, w_dim, side, up=True),
                        "conv1": StyleConv(cout, cout, w_dim, side, up=False),
                        "rgb": ToRGB(cout, c, w_dim),
                    }
                )
            )
            side *= 2
        # w index per layer as in StyleGAN2-ADA: a toRGB shares its index with the next block's first conv
        self.num_ws = 2 + 2 * len(self.blocks)
        self.w_dim, self.output = w_dim, opts.output

    def forward(self, ws: Tensor) -> Tensor:
        if ws.dim() == 2:
            ws = ws[:, None].expand(-1, self.num_ws, -1)  # [N, num_ws, w_dim]: W -> W+
        if ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(
                f"synthesis needs w [N, {self.w_dim}] or [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}"
            )
        x = self.const[None].expand(ws.shape[0], -1, -1, -1)  # [N, C4, 4, 4]
        x = self.conv4(x, ws[:, 0])
        img = self.rgb4(x, ws[:, 1])  # [N, C, 4, 4]
        idx = 1
        for blk in self.blocks:
            x = blk["conv0"](x, ws[:, idx])  # [N, Cr, r, r]
            x = blk["conv1"](x, ws[:, idx + 1])
            img = upsample2x(img) + blk["rgb"](x, ws[:, idx + 2])  # skip output: [N, C, r, r]
            idx += 2
        img = img * RGB_GAIN  # [N, C, H, W]
        if self.output == "tanh":
            return img.tanh()
        # linear: D's gradient reaches every pixel however dark; eval mode keeps the [-1, 1] contract
        return img if self.training else img.clamp(-1.0, 1.0)


class StyleGenerator(nn.Module):
    """Class-conditional StyleGAN2 generator: ``forward(z [N, z_dim], labels [N], codes [N, num_codes] | None)``
    -> ``[N, C, H, W]`` in [-1, 1] (``codes`` only with InfoGAN codes; None = their prior mean)."""

    conditional = True

    def __init__(
        self,
        z_dim: int,
        image_shape: tuple[int, int, int],
        num_classes: int,
        opts: StyleGANOptions,
        codes: Sequence[Any] = (),
    ) -> None:
        super().__init__()
        self.z_dim, self.num_classes, self.image_shape = z_dim, num_classes, tuple(image_shape)
        self.codes, self.code_dim = tuple(codes), code_dim(codes)  # InfoGAN codes; code_dim 0 = none
        self.w_dim = opts.w_dim
        # mapping(z [N, z_dim], labels [N], code values [N, num_codes] or None) -> w [N, w_dim]
        self.mapping = MappingNetwork(
            z_dim,
            num_classes,
            opts.w_dim,
            opts.mapping_layers,
            opts.mapping_lr_mul,
            self.codes,
            fade=opts.cond_fade_steps > 0,
        )
        self.opts = opts
        self.synthesis = SynthesisNetwork(opts.w_dim, image_shape, opts)
        self.num_ws = self.synthesis.num_ws

    def forward(self, z: Tensor, labels: Tensor | None = None, codes: Tensor | None = None) -> Tensor:
        return self.synthesis(self.mapping(z, labels, codes))  # [N, C, H, W]

    def set_training_step(self, step: int) -> None:
        """Fade the class condition in (``cond_fade_*``): the training step calls this before every step."""
        if self.mapping.cond_strength is not None:
            self.mapping.cond_strength.fill_(self.opts.cond_strength_at(step))

    @torch.no_grad()
    def class_w_stats(self, labels: Tensor, num: int = MEAN_W_SAMPLES, seed: int = 0) -> tuple[Tensor, Tensor]:
        """Each label's mean and per-dimension std of w over ``num`` fixed z draws.

        The z draws come from a CPU generator seeded with ``seed``, so the result is a pure function of
        the mapping weights (the same on every device, rank and call); nothing is cached, so it always
        matches the current weights.

        Args:
            labels: [N] int64 class labels.
            num: z draws per class.
            seed: seed of the draws.

        Returns:
            ([N, w_dim] mean w of each row's class, [N, w_dim] its std).
        """
        labels = require_labels(labels, labels.shape[0])
        param = self.synthesis.const
        z = torch.randn(num, self.z_dim, generator=torch.Generator().manual_seed(seed))  # [num, z_dim]
        z = z.to(device=param.device, dtype=param.dtype)
        classes, inverse = labels.unique(return_inverse=True)  # [K'], [N]
        ws = [self.mapping(z, torch.full((num,), int(k), device=z.device)) for k in classes.tolist()]  # [num, w_dim]
        means = torch.stack([w.mean(dim=0) for w in ws])  # [K', w_dim]
        stds = torch.stack([w.std(dim=0) for w in ws])  # [K', w_dim]
        return means[inverse], stds[inverse]  # [N, w_dim] each

    def class_mean_w(self, labels: Tensor, num: int = MEAN_W_SAMPLES, seed: int = 0) -> Tensor:
        """Each label's mean w [N, w_dim] (``class_w_stats``): the centre that truncation pulls toward."""
        return self.class_w_stats(labels, num, seed)[0]

    def latent_space(self) -> Any:
        """W: inversion, variations and truncation work on w (``synthgen.models.latent.WSpace``)."""
        from synthgen.models.latent import WSpace

        return WSpace(self)

    def truncate(self, w: Tensor, labels: Tensor, psi: float, num: int = MEAN_W_SAMPLES) -> Tensor:
        """Pull ``w`` [N, w_dim] (or W+ [N, num_ws, w_dim]) toward each label's mean w: ``mean + psi * (w - mean)``.

        psi = 1 returns ``w`` unchanged; smaller psi trades diversity for typicality.
        """
        from synthgen.models.latent import WSpace

        return WSpace(self, num=num).truncate(w, labels, psi)  # the one formula (W space's)


class StyleDiscriminator(nn.Module):
    """Residual projection discriminator: ``forward(x [N, C, H, W], labels [N]) -> [N]`` logits; with InfoGAN
    codes, ``forward(x, labels, with_codes=True) -> (logits [N], Q's predictions [N, code_dim])``."""

    conditional = True

    def __init__(
        self, image_shape: tuple[int, int, int], num_classes: int, opts: StyleGANOptions, out_codes: int = 0
    ) -> None:
        super().__init__()
        c, size, _ = image_shape
        self.num_classes, self.image_shape, self.opts = num_classes, tuple(image_shape), opts
        self.from_rgb = EqualConv2d(c, opts.channels(size), 1)
        sides = [size >> k for k in range(int(math.log2(size // 4)))]  # e.g. [32, 16, 8]
        self.blocks = nn.Sequential(*(DBlock(opts.channels(s), opts.channels(s // 2)) for s in sides))
        ch4 = opts.channels(4)
        self.conv = EqualConv2d(ch4 + 1, ch4, 3)  # +1: the minibatch-stddev map
        self.fc = EqualLinear(ch4 * 16, ch4, activation=True)
        self.out = EqualLinear(ch4, 1)
        self.embed = nn.Parameter(torch.randn(num_classes, ch4))  # [K, ch4]: the projection vectors V
        self.proj_gain = 1.0 / math.sqrt(ch4)  # equalized lr for V, and a unit-scale projection term
        if out_codes:  # created last: without codes the parameters (and their init draws) are unchanged
            self.q_head = QHead(ch4, out_codes)
        # scales the projection term (0 = an unconditional D); None without the option, as in the mapping
        self.register_buffer("cond_strength", torch.ones(()) if opts.cond_fade_steps > 0 else None)

    def set_training_step(self, step: int) -> None:
        """Fade the class condition in (``cond_fade_*``): the training step calls this before every step."""
        if self.cond_strength is not None:
            self.cond_strength.fill_(self.opts.cond_strength_at(step))

    def forward(
        self, x: Tensor, labels: Tensor | None = None, with_codes: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        labels = require_labels(labels, x.shape[0])  # [N]
        h = self.blocks(self.from_rgb(x))  # [N, C4, 4, 4]
        chunk = self.opts.mbstd_class_chunk
        if chunk:
            h = self.conv(class_minibatch_stddev(h, labels, self.num_classes, chunk))  # [N, C4, 4, 4]
        else:
            h = self.conv(minibatch_stddev(h, self.opts.mbstd_group))  # [N, C4, 4, 4]
        phi = self.fc(h.flatten(1))  # [N, C4]
        proj = (F.embedding(labels, self.embed) * phi).sum(dim=1) * self.proj_gain  # [N]
        if self.cond_strength is not None:
            proj = proj * self.cond_strength
        logits = self.out(phi).squeeze(1) + proj  # [N]
        return (logits, self.q_head(phi)) if with_codes else logits  # q: [N, code_dim (+ K with model.aux_weight)]


@register_model("stylegan", conditional=True, options=StyleGANOptions, codes=True)
def build(
    opts: StyleGANOptions,
    z_dim: int,
    image_shape: tuple[int, int, int],
    num_classes: int,
    codes: Sequence[Any] = (),
    aux_classes: int = 0,
) -> tuple[nn.Module, nn.Module]:
    """Build the stylegan (G, D) pair for ``image_shape`` (C, H, W) and ``num_classes`` classes.

    ``codes`` (InfoGAN, ``synthgen.models.codes``): extra mapping inputs and a Q head on D; () = none.
    ``aux_classes``: class logits appended to the Q head's outputs (the auxiliary classifier); 0 = none.

    Raises:
        ConfigError: a side other than 32, 64 or 128.
    """
    size = image_shape[1]
    if size not in SUPPORTED_RESOLUTIONS:
        raise ConfigError(
            f"model.name=stylegan supports data.resolution {', '.join(map(str, SUPPORTED_RESOLUTIONS))} "
            f"(powers of two from its 4x4 constant), got {size}. For the 28 px IDX sources (fashion-mnist, "
            f"mnist) set data.resolution=32: they pad 2 px of black on every side; imagefolder images are "
            f"resized and center-cropped to any data.resolution"
        )
    return (
        StyleGenerator(z_dim, image_shape, num_classes, opts, codes),
        StyleDiscriminator(image_shape, num_classes, opts, code_dim(codes) + aux_classes),
    )
