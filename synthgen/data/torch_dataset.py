"""Torch views of in-memory ImageData: uint8 [0, 255] -> float [-1, 1] via ``synthgen.pixels.to_float``."""

from __future__ import annotations

import numpy as np
import torch

from synthgen.data.base import ImageData
from synthgen.pixels import to_float


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
        return to_float(self.images[index]), int(self.labels[index])
