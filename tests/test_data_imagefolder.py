"""imagefolder source: images generated with PIL in tmp_path (mixed modes, sizes, formats, bad files)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthgen.config import DataConfig
from synthgen.data import load_images
from synthgen.data.imagefolder import decode_image
from synthgen.errors import ConfigError, DataError


def solid(mode: str, size: tuple[int, int], color) -> Image.Image:
    return Image.new(mode, size, color)


def save(img: Image.Image, path: Path, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kwargs)
    return path


def palette_image(size: tuple[int, int]) -> Image.Image:
    img = Image.new("P", size, 1)
    img.putpalette([0, 0, 0, 200, 10, 30] + [0] * 762)  # index 1 = (200, 10, 30)
    return img


def mixed_folder(root: Path) -> None:
    """Class "bird": PNG L/RGB/RGBA/P; class "cat": JPEG, 16-bit PNG, BMP, GIF, WEBP, LA. Assorted sizes."""
    save(solid("L", (40, 30), 10), root / "bird" / "l.png")
    save(solid("RGB", (17, 50), (255, 0, 0)), root / "bird" / "rgb.png")
    save(solid("RGBA", (64, 64), (0, 0, 255, 255)), root / "bird" / "rgba.png")
    save(palette_image((33, 21)), root / "bird" / "p.png")
    save(solid("RGB", (80, 60), (0, 255, 0)), root / "cat" / "a.jpg", quality=95)
    save(Image.fromarray(np.full((25, 31), 65535, np.uint16)), root / "cat" / "b16.png")
    save(solid("RGB", (12, 12), (7, 8, 9)), root / "cat" / "c.bmp")
    save(palette_image((16, 20)), root / "cat" / "d.gif")
    save(solid("RGB", (30, 30), (100, 100, 100)), root / "cat" / "e.webp", lossless=True)
    save(solid("LA", (20, 24), (50, 255)), root / "cat" / "f.png")


def test_mixed_modes_sizes_and_formats(tmp_path):
    mixed_folder(tmp_path)
    data = load_images(DataConfig(source="imagefolder", root=str(tmp_path), resolution=16, channels=3))
    assert data.images.shape == (10, 3, 16, 16) and data.images.dtype == np.uint8
    assert data.class_names == ("bird", "cat") and data.name == "imagefolder"
    assert data.labels.tolist() == [0] * 4 + [1] * 6
    center = data.images[:, :, 8, 8].tolist()  # one pixel of each (solid) image, files in sorted order
    assert center[0] == [10, 10, 10]  # l.png
    assert center[1] == [200, 10, 30]  # p.png (palette resolved)
    assert center[2] == [255, 0, 0]  # rgb.png
    assert center[3] == [0, 0, 255]  # rgba.png (opaque)
    assert max(abs(a - b) for a, b in zip(center[4], [0, 255, 0])) <= 3  # a.jpg (lossy)
    assert center[5] == [255, 255, 255]  # b16.png: 65535 -> 255
    assert center[6:] == [[7, 8, 9], [200, 10, 30], [100, 100, 100], [50, 50, 50]]  # bmp, gif, webp, LA


def test_grayscale_output(tmp_path):
    mixed_folder(tmp_path)
    data = load_images(DataConfig(source="imagefolder", root=str(tmp_path), resolution=8, channels=1))
    assert data.images.shape == (10, 1, 8, 8)
    assert data.images[0, 0, 4, 4] == 10 and data.images[2, 0, 4, 4] == 76  # L kept; red -> luma 0.299 * 255


def test_transparency_composited_on_white(tmp_path):
    save(solid("RGBA", (10, 10), (0, 0, 0, 0)), tmp_path / "a" / "clear.png")
    half = np.zeros((10, 10, 4), np.uint8)
    half[..., 3] = 128  # black at ~50% opacity
    save(Image.fromarray(half), tmp_path / "a" / "half.png")
    data = load_images(DataConfig(source="imagefolder", root=str(tmp_path), resolution=8, channels=3))
    assert (data.images[0] == 255).all()
    assert (data.images[1] == 127).all()  # 255 * (1 - 128/255)


def test_sixteen_bit_gray_scaled_to_eight_bits(tmp_path):
    ramp = np.array([[0, 128 * 257, 65535]], dtype=np.uint16).repeat(3, axis=0)  # [3, 3]
    save(Image.fromarray(ramp), tmp_path / "a" / "ramp.png")
    out = decode_image(str(tmp_path / "a" / "ramp.png"), resolution=3, channels=1)  # no resize needed
    assert out.shape == (1, 3, 3) and out[0, 0].tolist() == [0, 128, 255]


def test_shorter_side_resized_then_center_cropped(tmp_path):
    wide = np.zeros((20, 60), np.uint8)
    wide[:, 20:40] = 255  # white middle third of a 60x20 image
    save(Image.fromarray(wide), tmp_path / "a" / "wide.png")
    tall = np.zeros((80, 20), np.uint8)
    tall[20:60] = 200  # 20x80 image -> 10x40, band at rows 10..30; the center crop takes rows 15..25
    save(Image.fromarray(tall), tmp_path / "a" / "tall.png")
    data = load_images(DataConfig(source="imagefolder", root=str(tmp_path), resolution=20, channels=1))
    assert (data.images[1, 0] == 255).all()  # wide.png: the crop is exactly the white band
    half = load_images(DataConfig(source="imagefolder", root=str(tmp_path), resolution=10, channels=1))
    assert (half.images[0, 0] == 200).all()  # tall.png


def test_train_and_test_subfolders(tmp_path):
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("x", "y"):
            for i in range(n):
                save(solid("L", (9, 9), 30 * i), tmp_path / split / cls / f"{i}.png")
    cfg = DataConfig(source="imagefolder", root=str(tmp_path), resolution=8)
    train, test = load_images(cfg, "train"), load_images(cfg, "test")
    assert len(train) == 6 and len(test) == 4
    assert train.class_names == test.class_names == ("x", "y")
    assert test.labels.tolist() == [0, 0, 1, 1]


def test_flat_root_has_no_test_split(tmp_path):
    save(solid("L", (8, 8), 0), tmp_path / "a" / "0.png")
    with pytest.raises(DataError, match="add .*train.* and .*test") as err:
        load_images(DataConfig(source="imagefolder", root=str(tmp_path), resolution=8), "test")
    assert str(tmp_path) in str(err.value)


def test_train_folder_without_test_folder(tmp_path):
    save(solid("L", (8, 8), 0), tmp_path / "train" / "a" / "0.png")
    with pytest.raises(DataError, match="no test/ folder"):
        load_images(DataConfig(source="imagefolder", root=str(tmp_path), resolution=8))


def test_train_and_test_class_mismatch(tmp_path):
    save(solid("L", (8, 8), 0), tmp_path / "train" / "a" / "0.png")
    save(solid("L", (8, 8), 0), tmp_path / "test" / "b" / "0.png")
    with pytest.raises(DataError, match="different class folders"):
        load_images(DataConfig(source="imagefolder", root=str(tmp_path), resolution=8))


def test_missing_or_unset_root(tmp_path):
    missing = str(tmp_path / "nope")
    with pytest.raises(DataError, match="does not exist") as err:
        load_images(DataConfig(source="imagefolder", root=missing))
    assert missing in str(err.value)
    with pytest.raises(ConfigError, match="needs data.root"):
        load_images(DataConfig(source="imagefolder"))


def test_root_without_class_folders(tmp_path):
    save(solid("L", (8, 8), 0), tmp_path / "loose.png")
    with pytest.raises(DataError, match="no class subfolders") as err:
        load_images(DataConfig(source="imagefolder", root=str(tmp_path)))
    assert str(tmp_path) in str(err.value)


def test_empty_class_folder_named(tmp_path):
    save(solid("L", (8, 8), 0), tmp_path / "a" / "0.png")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "readme.txt").write_text("not an image")
    with pytest.raises(DataError, match="holds no image files") as err:
        load_images(DataConfig(source="imagefolder", root=str(tmp_path)))
    assert str(tmp_path / "b") in str(err.value)


def test_hidden_and_non_image_files_ignored(tmp_path):
    save(solid("L", (8, 8), 0), tmp_path / "a" / "0.png")
    (tmp_path / "a" / ".broken.png").write_bytes(b"junk")  # would fail if read
    (tmp_path / "a" / "notes.txt").write_text("hello")
    (tmp_path / ".cache" / "z").mkdir(parents=True)  # a hidden folder is no class
    (tmp_path / ".cache" / "z" / "junk.png").write_bytes(b"junk")
    data = load_images(DataConfig(source="imagefolder", root=str(tmp_path), resolution=8))
    assert len(data) == 1 and data.class_names == ("a",)


def make_truncated(path: Path) -> Path:
    save(Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)), path)
    path.write_bytes(path.read_bytes()[:2000])  # cut mid-stream
    return path


def test_truncated_file_is_a_data_error_naming_it(tmp_path):
    save(solid("L", (8, 8), 0), tmp_path / "a" / "0.png")
    bad = make_truncated(tmp_path / "a" / "1.png")
    with pytest.raises(DataError, match="skip_bad_files") as err:
        load_images(DataConfig(source="imagefolder", root=str(tmp_path), resolution=8))
    assert str(bad) in str(err.value)


def test_skip_bad_files_skips_and_reports(tmp_path, caplog):
    save(solid("L", (8, 8), 0), tmp_path / "a" / "0.png")
    save(solid("L", (8, 8), 0), tmp_path / "b" / "0.png")
    bad = [make_truncated(tmp_path / "a" / "1.png"), tmp_path / "b" / "1.jpg"]
    bad[1].write_bytes(os.urandom(500))  # not an image at all
    cfg = DataConfig(source="imagefolder", root=str(tmp_path), resolution=8, skip_bad_files=True)
    with caplog.at_level(logging.WARNING, logger="synthgen.data.imagefolder"):
        data = load_images(cfg)
    assert len(data) == 2 and data.labels.tolist() == [0, 1]
    assert data.skipped_files == tuple(str(p) for p in bad)
    assert "skipped 2 unreadable" in caplog.text


def test_class_with_only_bad_files_still_fails(tmp_path):
    save(solid("L", (8, 8), 0), tmp_path / "a" / "0.png")
    make_truncated(tmp_path / "b" / "0.png")
    cfg = DataConfig(source="imagefolder", root=str(tmp_path), resolution=8, skip_bad_files=True)
    with pytest.raises(DataError, match="no readable images") as err:
        load_images(cfg)
    assert str(tmp_path / "b") in str(err.value)


def test_thread_pool_keeps_file_order(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(70):  # above the parallel threshold
        arr = rng.integers(0, 256, (int(rng.integers(8, 20)), int(rng.integers(8, 20)), 3), dtype=np.uint8)
        save(Image.fromarray(arr), tmp_path / f"c{i % 3}" / f"{i:03d}.png")
    data = load_images(DataConfig(source="imagefolder", root=str(tmp_path), resolution=8, channels=3))
    files = sorted(tmp_path.glob("c*/*.png"))  # class folder, then file name: the loader's order
    assert len(data) == 70
    for k in (0, 23, 24, 69):
        np.testing.assert_array_equal(data.images[k], decode_image(str(files[k]), 8, 3))
        assert data.labels[k] == int(files[k].parent.name[1])
