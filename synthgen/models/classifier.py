"""``SmallCNN``: the judge's classifier architecture, also what CAS and uplift train from scratch.

A pure ``nn.Module`` (no data, no training loop): ``synthgen.judge`` trains and caches it, evaluation
trains fresh ones for CAS and uplift, and sampling's judge filter rebuilds it from a spec.
Pixels enter as uint8 and are mapped to [-1, 1] by :func:`synthgen.pixels.to_float`, the generators'
output range, so real and generated images are treated identically.
"""

from __future__ import annotations

import torch
from torch import nn

from synthgen.errors import ConfigError

FEATURE_DIM = 128  # width of the penultimate layer: the feature space of every distance metric


class SmallCNN(nn.Module):
    """conv-BN-ReLU-pool x2 -> fc(128) -> ReLU (features) -> dropout -> fc(num_classes).

    Args:
        in_channels: 1 (grayscale) or 3 (RGB).
        num_classes: number of output logits.
        resolution: square input side; a multiple of 4.
        width: channels of the first conv block (the second has twice as many).
    """

    def __init__(self, in_channels: int, num_classes: int, resolution: int, width: int = 32) -> None:
        super().__init__()
        if resolution % 4 != 0 or resolution < 4:
            raise ConfigError(f"classifier resolution={resolution} is invalid: must be a multiple of 4, e.g. 28")
        self.in_channels, self.num_classes, self.resolution, self.width = in_channels, num_classes, resolution, width
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # [N, w, R/2, R/2]
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # [N, 2w, R/4, R/4]
            nn.Flatten(),
            nn.Linear(2 * width * (resolution // 4) ** 2, FEATURE_DIM),
            nn.ReLU(inplace=True),  # [N, 128] penultimate features
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(FEATURE_DIM, num_classes))
        self.to(memory_format=torch.channels_last)  # NHWC convs and pooling are ~1.5x faster on CPU

    @property
    def arch(self) -> dict[str, int]:
        """The constructor arguments: what :meth:`from_arch` rebuilds the same network from."""
        return {
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "resolution": self.resolution,
            "width": self.width,
        }

    @classmethod
    def from_arch(cls, arch: dict[str, int]) -> SmallCNN:
        """A fresh network of the architecture :attr:`arch` describes (load its weights next)."""
        return cls(arch["in_channels"], arch["num_classes"], arch["resolution"], width=arch["width"])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations [N, 128] of float images x [N, C, H, W] in [-1, 1]."""
        # the weights are channels-last (see __init__); inputs that match them avoid a layout copy per conv
        return self.body(x.contiguous(memory_format=torch.channels_last))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [N, num_classes] of float images x [N, C, H, W] in [-1, 1]."""
        return self.head(self.features(x))
