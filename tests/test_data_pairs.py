"""synthgen.data.pairs: pix2pix's paired domains (edges of one labelled set, or two folders matched by path)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from synthgen.config import DataConfig
from synthgen.data import load_images
from synthgen.data.pairs import edge_maps, edge_pairs, elastic_variations, folder_pairs
from synthgen.errors import DataError


def _square(side: int = 28, lo: int = 8, hi: int = 20) -> np.ndarray:
    img = np.zeros((1, 1, side, side), dtype=np.uint8)
    img[:, :, lo:hi, lo:hi] = 255
    return img


def test_the_outline_of_a_square_is_its_border():
    edges = edge_maps(_square())[0, 0]  # [28, 28]
    assert set(np.unique(edges)) == {0, 255}
    ys, xs = np.nonzero(edges)
    assert ys.min() >= 6 and ys.max() <= 21 and xs.min() >= 6 and xs.max() <= 21  # on the border, not beyond
    assert edges[12:16, 12:16].sum() == 0 and edges[:4].sum() == 0  # nothing inside the square or far outside


def test_rgb_and_gray_give_the_same_outline():
    gray = _square()
    rgb = np.repeat(gray, 3, axis=1)
    assert np.array_equal(edge_maps(rgb), edge_maps(gray))


def test_edge_pairs_of_fashion_mnist_keep_labels_and_outline_every_image(fashion_mnist_root):
    data = load_images(DataConfig(root=fashion_mnist_root, max_images=50), "train")
    pairs = edge_pairs(data)
    assert len(pairs) == 50 and pairs.a.image_shape == (1, 28, 28) and pairs.b is data
    assert np.array_equal(pairs.a.labels, data.labels)
    on = (pairs.a.images > 0).mean(axis=(1, 2, 3))  # [50] fraction of edge pixels per image
    assert (on > 0.02).all() and (on < 0.5).all()


def test_elastic_variations_are_a_function_of_seed_id_and_variation_only():
    rng = np.random.default_rng(0)
    images = (rng.random((2, 1, 28, 28)) > 0.8).astype(np.uint8) * 255
    both = elastic_variations(images, np.array([5, 7]), 3, seed=1)
    assert both.shape == (2, 3, 1, 28, 28) and both.dtype == np.uint8
    alone = elastic_variations(images[1:], np.array([7]), 3, seed=1)
    assert np.array_equal(both[1], alone[0])  # id 7 alike whatever else is in the call
    assert not np.array_equal(elastic_variations(images[1:], np.array([7]), 3, seed=2), alone)
    v = both[0].astype(int)
    assert not np.array_equal(v[0], v[1]) and not np.array_equal(v[0], images[0])  # K shapes, none the input


def test_elastic_variations_stay_close_to_the_outline():
    outline = edge_maps(_square())  # [1, 1, 28, 28]
    warped = elastic_variations(outline, np.array([0]), 4, seed=0)[0]  # [4, 1, 28, 28]
    # most edge pixels move by about a pixel: the blurred outline still covers the warped one
    near = _dilate(outline[0, 0] > 0)  # [28, 28]: within 2 px of the outline
    kept = [(w[0] > 127)[near].sum() / max(1, (w[0] > 127).sum()) for w in warped]
    assert min(kept) > 0.8


def _dilate(mask: np.ndarray, r: int = 2) -> np.ndarray:
    out = np.zeros_like(mask)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            out |= np.roll(np.roll(mask, dy, axis=0), dx, axis=1)
    return out


def _folder(root: str, files: dict[str, int], channels: int) -> None:
    """Write ``files`` {relative path: gray value} as PNGs under ``root``."""
    for rel, value in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        mode = "L" if channels == 1 else "RGB"
        Image.new(mode, (8, 8), value if channels == 1 else (value, value, value)).save(path)


def test_folders_pair_by_relative_path_in_a_deterministic_order(tmp_path):
    files = {"cat/a.png": 10, "cat/sub/b.png": 20, "dog/c.png": 30}
    _folder(str(tmp_path / "A"), files, 1)
    _folder(str(tmp_path / "B"), {k: v + 100 for k, v in files.items()}, 3)
    pairs = folder_pairs(str(tmp_path / "A"), str(tmp_path / "B"), "train", 8, (1, 3))
    assert pairs.a.class_names == ("cat", "dog") and list(pairs.a.labels) == list(pairs.b.labels)
    assert pairs.a.image_shape == (1, 8, 8) and pairs.b.image_shape == (3, 8, 8)
    a_values, b_values = pairs.a.images[:, 0, 0, 0].astype(int), pairs.b.images[:, 0, 0, 0].astype(int)
    assert list(b_values - a_values) == [100, 100, 100]  # every row holds the two files of one relative path
    assert sorted(a_values) == [10, 20, 30]


def test_a_file_without_its_partner_is_named(tmp_path):
    _folder(str(tmp_path / "A"), {"cat/a.png": 1, "cat/b.png": 2}, 1)
    _folder(str(tmp_path / "B"), {"cat/a.png": 1, "cat/x.png": 2}, 1)
    with pytest.raises(DataError, match=r"1 file\(s\) only in A \(e.g. \['cat/b.png'\]\), 1 only in B"):
        folder_pairs(str(tmp_path / "A"), str(tmp_path / "B"), "train", 8, (1, 1))


def test_domains_with_other_classes_are_refused(tmp_path):
    _folder(str(tmp_path / "A"), {"cat/a.png": 1}, 1)
    _folder(str(tmp_path / "B"), {"bird/a.png": 1}, 1)
    with pytest.raises(DataError, match=r"only in A: \['cat'\], only in B: \['bird'\]"):
        folder_pairs(str(tmp_path / "A"), str(tmp_path / "B"), "train", 8, (1, 1))
