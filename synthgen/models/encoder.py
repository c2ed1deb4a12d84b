"""Latent encoder ``E(image, label) -> z``: amortised GAN inversion for one trained generator.

Inverting an image by optimisation costs hundreds of generator forward/backward passes; an encoder
trained once against the frozen generator predicts a latent in one forward pass, which a few
optimisation steps then refine (in-domain inversion, Zhu et al. 2020; pSp, Richardson et al. 2021).

Architecture (mirrors the conv discriminators' resolution and width rules, ``synthgen.models.blocks``):
``x [N, C, H, W]`` -> n x (conv 4x4 s2 + LeakyReLU 0.2) down to the generator's start grid -> conv 3x3 +
LeakyReLU -> flatten ``[N, F]`` -> concat a class embedding ``[N, E]`` -> linear + LeakyReLU -> linear to
``z_dim``. At 28 px with ``channels=32``: C@28 -> 32@14 -> 64@7 -> 64@7 -> [3136] (+32) -> 512 -> z_dim.
No batch norm: a latent must not depend on which other images share its batch.
The label enters at the head because a conditional generator reads the class from its own input:
the same pixels under another label call for another latent. Unconditional generators ignore labels,
and so, after training, does the encoder (the embedding then carries no information).

Pure ``nn.Module``: no file or Ray code here (``synthgen.invert.encoder`` trains, saves and loads it).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from synthgen.errors import ConfigError
from synthgen.models.blocks import check_shape, level_sides, require_labels, width

ENCODER_CLASS_EMBED_DIM = 32  # class embedding concatenated to the flattened features
ENCODER_HIDDEN = 512  # width of the head's hidden layer


class LatentEncoder(nn.Module):
    """``forward(x [N, C, H, W] float in [-1, 1], labels [N] int64) -> z [N, z_dim]``."""

    def __init__(self, z_dim: int, image_shape: tuple[int, int, int], num_classes: int, channels: int = 32) -> None:
        """Size the encoder for a generator.

        Args:
            z_dim: the generator's latent size.
            image_shape: the generator's (C, H, W).
            num_classes: the generator's class count (>= 1; unconditional generators still report theirs).
            channels: base width: the channels at half resolution (see the width rule in ``blocks``).

        Raises:
            ConfigError: unsupported image shape, ``z_dim`` < 1, ``num_classes`` < 1 or ``channels`` < 1.
        """
        super().__init__()
        if z_dim < 1 or num_classes < 1 or channels < 1:
            raise ConfigError(
                f"encoder needs z_dim, num_classes and channels >= 1, got {z_dim}, {num_classes}, "
                f"{channels}; check the generator checkpoint and the encoder's channels option"
            )
        check_shape(tuple(image_shape), num_classes, conditional=True)  # type: ignore[arg-type]
        c, size, _ = image_shape
        self.z_dim, self.num_classes, self.image_shape = int(z_dim), int(num_classes), tuple(image_shape)
        self.channels = int(channels)
        sides = level_sides(size)[::-1][1:]  # below the image, finest first, e.g. [14, 7]
        chans = [c] + [width(channels, size, s) for s in sides]  # e.g. [1, 32, 64]
        layers: list[nn.Module] = []
        for i in range(len(sides)):
            layers += [nn.Conv2d(chans[i], chans[i + 1], 4, 2, 1), nn.LeakyReLU(0.2)]
        # a stride-1 conv at the start grid: each cell sees its neighbours before the flatten
        layers += [nn.Conv2d(chans[-1], chans[-1], 3, 1, 1), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.feature_dim = chans[-1] * sides[-1] * sides[-1]  # e.g. 64 * 7 * 7 = 3136
        self.embed = nn.Embedding(num_classes, ENCODER_CLASS_EMBED_DIM)
        self.head = nn.Sequential(
            nn.Linear(self.feature_dim + ENCODER_CLASS_EMBED_DIM, ENCODER_HIDDEN),
            nn.LeakyReLU(0.2),
            nn.Linear(ENCODER_HIDDEN, z_dim),
        )

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        """Predict the latent of each image under its label.

        Args:
            x: float [N, C, H, W] in [-1, 1] (``synthgen.pixels.to_float`` of uint8 images).
            labels: int64 [N].

        Returns:
            float [N, z_dim].
        """
        labels = require_labels(labels, x.shape[0])  # [N]
        phi = self.features(x).flatten(1)  # [N, F]
        return self.head(torch.cat([phi, self.embed(labels).to(phi.dtype)], dim=1))  # [N, F + E] -> [N, z_dim]


def encoder_for(generator: nn.Module, channels: int = 32) -> LatentEncoder:
    """A fresh encoder sized from a generator's latent space, ``image_shape`` and ``num_classes``.

    Args:
        generator: any registered generator (they all expose the three attributes).
        channels: the encoder's base width.

    Returns:
        An untrained ``LatentEncoder`` on the CPU.

    Raises:
        ConfigError: the generator lacks one of the attributes, or its shape is unsupported.
    """
    from synthgen.models.latent import latent_space

    missing = [a for a in ("z_dim", "image_shape", "num_classes") if not hasattr(generator, a)]
    if missing:
        raise ConfigError(
            f"generator {type(generator).__name__} lacks {missing}: build it with "
            "synthgen.models.build_models (every registered generator declares them)"
        )
    # the encoder predicts a latent of the space the generator declares (z, or W for stylegan)
    return LatentEncoder(
        latent_space(generator).dim, tuple(generator.image_shape), int(generator.num_classes), channels
    )
