"""The one uint8 <-> float pixel mapping: uint8 [0, 255] <-> float32 [-1, 1] (the range G outputs).

Real images (training, the judge, inversion targets) go in through :func:`to_float`; generated
images (shards, grids, evaluation) come out through :func:`to_uint8`, so real and synthetic pixels
agree byte for byte. A neutral bottom module: models, data, sample and evaluate all import it.
"""

from __future__ import annotations

import numpy as np
import torch

from synthgen.errors import ConfigError


def to_float(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Map uint8 images [..., C, H, W] in [0, 255] to float32 in [-1, 1].

    Args:
        images: uint8 numpy array or tensor, any leading dims.

    Returns:
        float32 tensor of the same shape (a new tensor); 0 -> -1.0, 255 -> 1.0.

    Raises:
        ConfigError: the input is not uint8 (floats would be scaled twice).
    """
    x = torch.as_tensor(images)
    if x.dtype != torch.uint8:
        raise ConfigError(
            f"pixels must be uint8 in [0, 255], got {x.dtype} {tuple(x.shape)}; "
            "convert float images in [-1, 1] with to_uint8 first"
        )
    return x.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """Inverse of :func:`to_float`: float [-1, 1] -> uint8 [0, 255], ``round((x + 1) * 127.5)`` clamped.

    Args:
        images: float tensor (any device, shape kept) or numpy array.

    Returns:
        uint8 of the same kind and shape as the input.
    """
    if isinstance(images, np.ndarray):
        return np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return torch.clamp(torch.round((images.detach() + 1.0) * 127.5), 0, 255).to(torch.uint8)
