"""``cdcgan``: class-conditional DCGAN with conditional batch-norm and a projection discriminator.

Generator: ``[z, embed(y)] -> linear -> start grid -> CBN + ReLU -> n x (ConvT 4x4 s2 + CBN + ReLU)
-> conv 3x3 to C channels -> tanh``. The class enters twice: in the input (an embedding concatenated
to ``z``) and as a per-class gain/bias in every batch-norm (CBN), which is what makes each class's images
look like that class.

Discriminator (Miyato & Koyama 2018): ``phi(x)`` = n x (conv 4x4 s2 + LeakyReLU 0.1) -> conv 3x3 +
LeakyReLU, flattened over the start grid; ``logit = w . phi(x) + b + <V[y], phi(x)>``. Every layer, the
class embedding ``V`` included, carries spectral norm, which bounds D's Lipschitz constant and keeps
hinge-loss training stable.
``phi`` is the flattened start grid rather than a global sum because this D is shallow: a sum would throw
away where things are, and the layout (sleeve vs. strap, heel vs. toe) is what tells the classes apart.

InfoGAN codes (``model.codes``, ``synthgen.models.codes``): G's input becomes ``[z, codes, embed(y)]``, and D
gets a Q head on ``phi`` that predicts them (``D(x, y, with_codes=True) -> (logits, q)``). Without codes both
networks are exactly the ones above (same parameters, same initialisation order).

Resolution and width rules: see ``synthgen.models.blocks``. At 28x28 with widths 64/64:
G 160 -> 128@7 -> 64@14 -> 16@28 -> C@28; D C@28 -> 64@14 -> 128@7 -> 128@7 -> phi [6272].
Cost: one hinge train step (D on 64 real + 64 fake, then G) at batch 64 takes ~0.23 s on one CPU thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from synthgen.models.blocks import (
    ConditionalBatchNorm2d,
    ConvWidths,
    UpBlock,
    down_features,
    level_sides,
    require_labels,
    sn_conv,
    sn_embedding,
    sn_linear,
    width,
)
from synthgen.models.codes import QHead, code_dim, encode_codes
from synthgen.models.registry import register_model

CLASS_EMBED_DIM = 32  # size of the class embedding concatenated to z in the generator input


class CondGenerator(nn.Module):
    """Class-conditional generator: ``forward(z [N, z_dim], labels [N], codes [N, num_codes] | None)``
    -> ``[N, C, H, W]`` in [-1, 1] (``codes`` only with InfoGAN codes; None = their prior mean)."""

    conditional = True

    def __init__(
        self, z_dim: int, image_shape: tuple[int, int, int], num_classes: int, base: int, codes: Sequence[Any] = ()
    ) -> None:
        super().__init__()
        c, size, _ = image_shape
        self.z_dim, self.num_classes, self.image_shape = z_dim, num_classes, tuple(image_shape)
        self.codes, self.code_dim = tuple(codes), code_dim(codes)  # InfoGAN codes; code_dim 0 = none
        sides = level_sides(size)  # e.g. [7, 14, 28]
        chans = [width(base, size, s) for s in sides]  # e.g. [128, 64, 16]
        self.start = sides[0]
        self.embed = nn.Embedding(num_classes, CLASS_EMBED_DIM)
        # bias-free: the conditional BN right after supplies the (per-class) bias
        self.fc = nn.Linear(z_dim + self.code_dim + CLASS_EMBED_DIM, chans[0] * self.start * self.start, bias=False)
        self.fc_norm = ConditionalBatchNorm2d(chans[0], num_classes)
        self.ups = nn.ModuleList(UpBlock(chans[i], chans[i + 1], num_classes) for i in range(len(chans) - 1))
        # a 3x3 conv (not a stride-2 ConvT) writes the image: no checkerboard in the output itself
        self.to_image = nn.Conv2d(chans[-1], c, kernel_size=3, padding=1)

    def forward(self, z: Tensor, labels: Tensor | None = None, codes: Tensor | None = None) -> Tensor:
        labels = require_labels(labels, z.shape[0])  # [N]
        if self.code_dim:
            z = torch.cat([z, encode_codes(self.codes, codes, z.shape[0], z)], dim=1)  # [N, z_dim + code_dim]
        zy = torch.cat([z, self.embed(labels).to(z.dtype)], dim=1)  # [N, z_dim (+ code_dim) + E]
        h = self.fc(zy).view(z.shape[0], -1, self.start, self.start)  # [N, C0, s, s]
        h = torch.relu(self.fc_norm(h, labels))
        for up in self.ups:
            h = up(h, labels)  # [N, Ci, 2s, 2s]
        return self.to_image(h).tanh()  # [N, C, H, W]


class ProjectionDiscriminator(nn.Module):
    """Projection discriminator: ``forward(x [N, C, H, W], labels [N]) -> [N]`` logits; with InfoGAN codes,
    ``forward(x, labels, with_codes=True) -> (logits [N], Q's predictions [N, code_dim])``."""

    conditional = True

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, base: int, out_codes: int = 0) -> None:
        super().__init__()
        self.num_classes, self.image_shape = num_classes, tuple(image_shape)
        self.features, self.feature_dim = down_features(image_shape, base, sn_conv, slope=0.1)  # phi: e.g. 6272
        self.linear = sn_linear(self.feature_dim, 1)
        self.embed = sn_embedding(num_classes, self.feature_dim)
        if out_codes:  # created last: without codes the parameters (and their init draws) are unchanged
            self.q_head = QHead(self.feature_dim, out_codes)

    def forward(
        self, x: Tensor, labels: Tensor | None = None, with_codes: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        labels = require_labels(labels, x.shape[0])  # [N]
        phi = self.features(x).flatten(1)  # [N, F]
        out = self.linear(phi).squeeze(1)  # [N]
        logits = out + (self.embed(labels) * phi).sum(dim=1)  # [N] + class projection term
        return (logits, self.q_head(phi)) if with_codes else logits  # q: [N, code_dim (+ K with model.aux_weight)]


@dataclass(frozen=True)
class CDCGANOptions(ConvWidths):
    """``model.arch`` of cdcgan: the two base widths (fields and defaults from ``ConvWidths``)."""


@register_model("cdcgan", conditional=True, options=CDCGANOptions, codes=True)
def build(
    opts: CDCGANOptions,
    z_dim: int,
    image_shape: tuple[int, int, int],
    num_classes: int,
    codes: Sequence[Any] = (),
    aux_classes: int = 0,
) -> tuple[nn.Module, nn.Module]:
    """Build the class-conditional (G, D) pair for ``image_shape`` (C, H, W) and ``num_classes`` classes.

    ``codes`` (InfoGAN, ``synthgen.models.codes``): extra G inputs and a Q head on D; () = none.
    ``aux_classes``: class logits appended to the Q head's outputs (the auxiliary classifier); 0 = none.
    """
    g = CondGenerator(z_dim, image_shape, num_classes, opts.g_channels, codes)
    d = ProjectionDiscriminator(image_shape, num_classes, opts.d_channels, code_dim(codes) + aux_classes)
    return g, d
