"""Paired images for pix2pix and srgan: domain A (the inputs) and domain B (the targets), row for row, with A's labels.

Three ways to have pairs:
- ``edges``: derived from one labelled set by a deterministic transform: A = each image's outline (Canny edges,
  ``kornia.filters.canny``), B = the image itself ("an outline of a bag converted to a bag image").
- ``downsample``: derived the same way for an upscaler: A = each image shrunk by a factor (antialiased bicubic),
  B = the image itself.
- two ImageFolders whose files match by relative path (``<class>/<name>`` under each split folder): row i of A
  and of B are the two files with one relative path; the labels are A's class folders.

``elastic_variations`` turns one outline into K deformed ones (torchvision's elastic warp of a smooth random
displacement field), so that one outline renders K shapes: variation j of image i is a pure function of
(seed, i, j), whichever actor or batch computes it.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from synthgen.data.base import ImageData
from synthgen.data.imagefolder import MAX_THREADS, _class_files, _split_dir, decode_image
from synthgen.draws import philox_normals
from synthgen.errors import DataError

EDGE_LOW, EDGE_HIGH = 0.1, 0.2  # Canny hysteresis thresholds on [0, 1] gray images (kornia's defaults)
ELASTIC_DOMAIN = 0x454C41535449_0006  # Philox key word of the outlines' displacement fields (synthgen.draws)


@dataclass(frozen=True)
class PairedData:
    a: ImageData  # domain A (inputs), e.g. outlines; labels are the pairs' labels
    b: ImageData  # domain B (targets), row i pairs with a's row i and has its label

    def __len__(self) -> int:
        return len(self.a)


def edge_maps(images: np.ndarray) -> np.ndarray:
    """Outlines of uint8 ``images`` [N, C, H, W]: uint8 [N, 1, H, W], 255 on an edge, 0 elsewhere.

    Canny (``kornia.filters.canny``: Gaussian blur, Sobel gradients, non-maximum suppression, hysteresis) on the
    gray image in [0, 1]; deterministic on the CPU.
    """
    import kornia
    import torch

    x = torch.from_numpy(np.ascontiguousarray(images)).float() / 255.0  # [N, C, H, W] in [0, 1]
    if x.shape[1] == 3:
        x = kornia.color.rgb_to_grayscale(x)  # [N, 1, H, W]
    _, edges = kornia.filters.canny(x, low_threshold=EDGE_LOW, high_threshold=EDGE_HIGH)  # [N, 1, H, W] in {0, 1}
    return (edges > 0.5).to(torch.uint8).mul_(255).numpy()


def edge_pairs(data: ImageData) -> PairedData:
    """``edges`` pairs of one labelled set: A = ``edge_maps(data.images)``, B = ``data``."""
    a = ImageData(
        name=f"{data.name}:edges", images=edge_maps(data.images), labels=data.labels, class_names=data.class_names
    )
    return PairedData(a=a, b=data)


def downsample(images: np.ndarray, factor: int) -> np.ndarray:
    """uint8 ``images`` [N, C, H, W] shrunk by ``factor``: uint8 [N, C, H/factor, W/factor], antialiased bicubic
    (``torch.nn.functional.interpolate(..., antialias=True)``, PIL's filter on tensors), rounded; deterministic."""
    import torch
    import torch.nn.functional as F

    n, c, h, w = images.shape
    if factor < 1 or h % factor or w % factor:
        raise DataError(f"cannot downsample {h}x{w} images by {factor}: the side must be a multiple of the factor")
    x = torch.from_numpy(np.ascontiguousarray(images)).float()  # [N, C, H, W] in [0, 255]
    out = F.interpolate(x, size=(h // factor, w // factor), mode="bicubic", antialias=True, align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8).numpy()  # [N, C, H/f, W/f]


def downsample_pairs(data: ImageData, factor: int) -> PairedData:
    """``downsample`` pairs of one labelled set: A = ``downsample(data.images, factor)``, B = ``data``."""
    a = ImageData(
        name=f"{data.name}:x{factor}",
        images=downsample(data.images, factor),
        labels=data.labels,
        class_names=data.class_names,
    )
    return PairedData(a=a, b=data)


def elastic_variations(
    images: np.ndarray, image_ids: np.ndarray, variations: int, seed: int, alpha: float = 0.6, smooth: float = 3.0
) -> np.ndarray:
    """``variations`` elastic deformations of each uint8 image [N, C, H, W]: uint8 [N, variations, C, H, W].

    Variation j of image ``image_ids[i]`` is ``elastic_rows``' warp ``(image_ids[i], j)``.
    """
    n, c, h, w = images.shape
    ids = np.repeat(np.asarray(image_ids, dtype=np.int64), variations)  # [N * V]
    js = np.tile(np.arange(variations, dtype=np.int64), n)  # [N * V]
    rows = np.repeat(np.ascontiguousarray(images), variations, axis=0)  # [N * V, C, H, W]
    return elastic_rows(rows, ids, js, seed, alpha, smooth).reshape(n, variations, c, h, w)


def elastic_rows(
    images: np.ndarray,
    image_ids: np.ndarray,
    variation_ids: np.ndarray,
    seed: int,
    alpha: float = 0.6,
    smooth: float = 3.0,
) -> np.ndarray:
    """One elastic deformation per uint8 row [N, C, H, W]: row k warped by variation ``variation_ids[k]`` of image
    ``image_ids[k]``; uint8 [N, C, H, W].

    The displacement field is drawn from Philox at counter ``(0, image_id, j, 0)`` under ``(seed, ELASTIC_DOMAIN)``,
    Gaussian-blurred (sigma ``smooth`` pixels) and scaled to ``alpha`` (in grid units of [-1, 1], so 0.6 moves a pixel
    ~1 px on 28 px after the blur) -- torchvision's ``elastic`` with our own field. Every row is warped on its own,
    so a row depends on nothing but (its pixels, seed, image id, j), never on the batch it came in.
    """
    import torch
    from torchvision.transforms.v2 import functional as TF

    n, c, h, w = images.shape
    ids, js = np.asarray(image_ids, dtype=np.int64), np.asarray(variation_ids, dtype=np.int64)
    noise = torch.from_numpy(philox_normals(ids, js, seed, ELASTIC_DOMAIN, 2 * h * w)).view(-1, 2, h, w)
    kernel = 2 * int(3 * smooth) + 1
    x = torch.from_numpy(np.ascontiguousarray(images))  # [N, C, H, W] uint8
    out = []
    for k in range(n):
        field = TF.gaussian_blur(noise[k : k + 1], [kernel, kernel], [smooth, smooth])  # [1, 2, H, W], smooth
        field = field / field.flatten(1).std(dim=1).clamp_min(1e-8)[:, None, None, None] * (alpha / max(h, w))
        out.append(TF.elastic(x[k], field[0].permute(1, 2, 0)[None], fill=0.0))
    return torch.stack(out).numpy() if out else np.zeros_like(images)


def folder_pairs(root_a: str, root_b: str, split: str, resolution: int, channels: tuple[int, int]) -> PairedData:
    """Pairs of two ImageFolders whose files match by relative path, in A's (deterministic) file order.

    Args:
        root_a, root_b: the two folders (``root/<class>/...`` or ``root/train|test/<class>/...``).
        split: "train" or "test".
        resolution: square side of both domains.
        channels: (A's, B's) channel count, 1 or 3 each.

    Raises:
        DataError: missing folders, different class folders, or files without a partner (the message lists them).
    """
    dir_a, dir_b = (_split_dir(os.path.abspath(os.path.expanduser(r)), split) for r in (root_a, root_b))
    (classes_a, files_a), (classes_b, files_b) = _class_files(dir_a), _class_files(dir_b)
    if classes_a != classes_b:
        raise DataError(
            f"paired folders {dir_a!r} and {dir_b!r} have different class folders (only in A: "
            f"{sorted(set(classes_a) - set(classes_b))}, only in B: {sorted(set(classes_b) - set(classes_a))}); "
            "give both the same class subfolders"
        )
    rel_b = {os.path.relpath(path, dir_b): path for path, _ in files_b}
    rel_a = [os.path.relpath(path, dir_a) for path, _ in files_a]
    alone_a, alone_b = sorted(set(rel_a) - set(rel_b)), sorted(set(rel_b) - set(rel_a))
    if alone_a or alone_b:
        raise DataError(
            f"paired folders {dir_a!r} and {dir_b!r} do not match file for file: {len(alone_a)} file(s) only in A "
            f"(e.g. {alone_a[:3]}), {len(alone_b)} only in B (e.g. {alone_b[:3]}); every image needs its partner at "
            "the same relative path"
        )
    with ThreadPoolExecutor(MAX_THREADS) as pool:  # PIL releases the GIL while decoding
        images_a = list(pool.map(lambda p: decode_image(p, resolution, channels[0]), [p for p, _ in files_a]))
        images_b = list(pool.map(lambda r: decode_image(rel_b[r], resolution, channels[1]), rel_a))
    labels = np.array([label for _, label in files_a], dtype=np.int64)
    return PairedData(
        a=ImageData(name=f"{root_a}", images=np.stack(images_a), labels=labels, class_names=classes_a),
        b=ImageData(name=f"{root_b}", images=np.stack(images_b), labels=labels, class_names=classes_a),
    )
