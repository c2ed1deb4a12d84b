"""Torch views of in-memory ImageData: uint8 [0, 255] -> float [-1, 1] (the range G outputs)."""

from __future__ import annotations

import numpy as np
import torch

from synthgen.data.base import ImageData


def to_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Map uint8 images [..., C, H, W] in [0, 255] to float32 in [-1, 1].

    Args:
        images: uint8 numpy array or tensor, any leading dims.

    Returns:
        float32 tensor of the same shape; 0 -> -1.0, 255 -> 1.0.

    Raises:
        TypeError: the input is not uint8.
    """
    x = torch.as_tensor(np.asarray(images) if isinstance(images, np.ndarray) else images)
    if x.dtype != torch.uint8:
        raise TypeError(f"to_tensor expects uint8 images, got {x.dtype}")
    return x.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """Inverse of ``to_tensor``: float [-1, 1] -> uint8 [0, 255], ``round((x + 1) * 127.5)`` clamped.

    Works on torch tensors (any device, shape kept) and numpy arrays. Sampled shards, grids and
    evaluation images all go through this one function, so their pixels agree byte for byte.
    """
    if isinstance(images, np.ndarray):
        return np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return torch.clamp(torch.round((images.detach() + 1.0) * 127.5), 0, 255).to(torch.uint8)


class InMemoryImageDataset(torch.utils.data.Dataset):
    """``dataset[i] -> (float32 [C, H, W] in [-1, 1], int label)`` over an ImageData held in memory."""

    def __init__(self, data: ImageData) -> None:
        # One uint8 tensor (4x smaller than float); each item is converted on access.
        self.images = torch.from_numpy(np.ascontiguousarray(data.images).copy())  # [N, C, H, W] uint8
        self.labels = torch.from_numpy(np.asarray(data.labels, dtype=np.int64).copy())  # [N]
        self.class_names = data.class_names

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return to_tensor(self.images[index]), int(self.labels[index])
