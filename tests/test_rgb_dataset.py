"""jobs/make_rgb_dataset.py: the RGB benchmark ImageFolder built from the real Fashion-MNIST IDX files."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthgen.config import DataConfig
from synthgen.data import load_images

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "jobs" / "make_rgb_dataset.py"
PER_CLASS = 3
K = 10
# sha256 of the raw RGB pixels of tint's renders of train items 0-4 at 32 px, seed 0, as they were before
# --recipe existed (numpy 2.4, Pillow 13): tint must keep rebuilding the existing data sets byte for byte
TINT_PIXELS_SHA256 = "18517c88f33d5df510083dd96334609cada23b1815dbb3f075b00647664caae6"


def _job():
    spec = importlib.util.spec_from_file_location("job_make_rgb_dataset", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


JOB = _job()


def _make(out: Path, *args: str) -> int:
    return JOB.main(["--out", str(out), "--max-per-class", str(PER_CLASS), "--no-progress", *args])


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}


@pytest.fixture(scope="module")
def built(tmp_path_factory, fashion_mnist_root) -> Path:
    out = tmp_path_factory.mktemp("rgb") / "set32"
    assert _make(out, "--source-root", fashion_mnist_root) == 0
    return out


@pytest.fixture(scope="module")
def scene_built(tmp_path_factory, fashion_mnist_root) -> Path:
    out = tmp_path_factory.mktemp("scene") / "set32"
    assert _make(out, "--source-root", fashion_mnist_root, "--recipe", "scene") == 0
    return out


def test_layout_counts_mode_and_size(built: Path) -> None:
    for split in ("train", "test"):
        folders = sorted(p.name for p in (built / split).iterdir())
        assert folders == [
            "0-t-shirt-top",
            "1-trouser",
            "2-pullover",
            "3-dress",
            "4-coat",
            "5-sandal",
            "6-shirt",
            "7-sneaker",
            "8-bag",
            "9-ankle-boot",
        ]
        for folder in folders:
            pngs = sorted((built / split / folder).glob("*.png"))
            assert len(pngs) == PER_CLASS, (split, folder)
            with Image.open(pngs[0]) as img:
                assert img.mode == "RGB" and img.size == (32, 32) and img.format == "PNG"
    manifest = json.loads((built / "dataset.json").read_text())
    assert manifest["counts"] == {"train": [PER_CLASS] * K, "test": [PER_CLASS] * K}
    assert manifest["resolution"] == 32 and manifest["seed"] == 0 and manifest["recipe"] == "tint"
    assert not [p for p in built.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_the_repo_loader_reads_it_back_with_the_fashion_mnist_labels(built: Path, fashion_mnist_root) -> None:
    for split in ("train", "test"):
        data = load_images(DataConfig(source="imagefolder", root=str(built), resolution=32, channels=3), split)
        assert data.images.shape == (K * PER_CLASS, 3, 32, 32)
        assert np.bincount(data.labels, minlength=K).tolist() == [PER_CLASS] * K
        # file <index>.png in folder <k>-... is item <index> of the IDX split, whose label is k
        source = load_images(DataConfig(source="fashion-mnist", root=fashion_mnist_root), split)
        for path in (built / split).rglob("*.png"):
            assert source.labels[int(path.stem)] == int(path.parent.name.split("-")[0])
        # the colour is real: the three channels differ
        assert np.abs(data.images[:, 0].astype(int) - data.images[:, 1]).mean() > 5


def test_same_seed_same_bytes_other_seed_other_bytes(built: Path, tmp_path: Path, fashion_mnist_root) -> None:
    again, other = tmp_path / "again", tmp_path / "other"
    assert _make(again, "--source-root", fashion_mnist_root) == 0
    assert _make(other, "--source-root", fashion_mnist_root, "--seed", "1") == 0
    reference = _files(built)
    assert _files(again) == reference
    other_files = _files(other)
    assert other_files.keys() == reference.keys()  # the same items ...
    assert sum(other_files[k] != reference[k] for k in reference) == len(reference)  # ... rendered differently


def test_an_image_does_not_depend_on_the_other_items(built: Path, tmp_path: Path, fashion_mnist_root) -> None:
    bigger = tmp_path / "bigger"
    assert (
        JOB.main(
            [
                "--out",
                str(bigger),
                "--max-per-class",
                str(PER_CLASS + 2),
                "--no-progress",
                "--source-root",
                fashion_mnist_root,
            ]
        )
        == 0
    )
    small, large = _files(built), _files(bigger)
    assert set(small) < set(large) and all(large[k] == v for k, v in small.items())


def test_the_composite_shows_the_item(fashion_mnist_root) -> None:
    items = load_images(DataConfig(source="fashion-mnist", root=fashion_mnist_root), "train").images[:20, 0]
    for index, item in enumerate(items):
        image, alpha = JOB.render(item, JOB.item_rng(0, "train", index), 32)
        background, no_alpha = JOB.render(np.zeros_like(item), JOB.item_rng(0, "train", index), 32)
        assert image.shape == (32, 32, 3) and image.dtype == np.uint8 and not no_alpha.any()
        covered = alpha > 0.5
        assert covered.sum() > 50  # the item covers a good part of the image
        assert np.array_equal(image[alpha == 0], background[alpha == 0])  # pure background off the item
        diff = np.abs(image.astype(int) - background).sum(axis=2)  # [32, 32]
        assert diff[covered].mean() > 60  # the item stands out from what lies behind it
        # the item is recoverable: how far a pixel is from the background follows the item's alpha
        assert np.corrcoef(diff.ravel(), alpha.ravel())[0, 1] > 0.7


def test_backgrounds_are_solid_two_tone_or_smooth_and_all_differ() -> None:
    kinds = {"solid": 0, "two-tone": 0, "smooth": 0}  # solid | stripes, checks | gradient, noise
    seen = set()
    for index in range(60):
        bg = JOB.make_background(JOB.item_rng(0, "train", index), 32, 0.3)
        assert bg.shape == (32, 32, 3) and bg.min() >= 0 and bg.max() <= 1
        colours = len(np.unique(bg.reshape(-1, 3), axis=0))
        kinds["solid" if colours == 1 else "two-tone" if colours == 2 else "smooth"] += 1
        seen.add(bg.tobytes())
    assert min(kinds.values()) >= 5, kinds
    assert len(seen) == 60


def test_tint_is_the_default_and_renders_as_before_recipes(built: Path, tmp_path: Path, fashion_mnist_root) -> None:
    explicit = tmp_path / "tint"
    assert _make(explicit, "--source-root", fashion_mnist_root, "--recipe", "tint") == 0
    assert _files(explicit) == _files(built)
    assert json.loads((explicit / "dataset.json").read_text())["recipe"] == "tint"
    items = load_images(DataConfig(source="fashion-mnist", root=fashion_mnist_root), "train").images[:5, 0]
    digest = hashlib.sha256()
    for index, item in enumerate(items):
        digest.update(JOB.render(item, JOB.item_rng(0, "train", index), 32)[0].tobytes())
    assert digest.hexdigest() == TINT_PIXELS_SHA256, "tint's pixels changed (or numpy/Pillow render differently)"


def test_scene_differs_from_tint_same_seed_same_bytes_and_no_dependence_on_other_items(
    built: Path, scene_built: Path, tmp_path: Path, fashion_mnist_root
) -> None:
    manifest = json.loads((scene_built / "dataset.json").read_text())
    assert manifest["recipe"] == "scene" and manifest["counts"] == {"train": [PER_CLASS] * K, "test": [PER_CLASS] * K}
    tint, scene = _files(built), _files(scene_built)
    assert scene.keys() == tint.keys()  # the same items in the same layout ...
    assert all(scene[k] != tint[k] for k in tint)  # ... rendered otherwise
    again, bigger = tmp_path / "again", tmp_path / "bigger"
    assert _make(again, "--source-root", fashion_mnist_root, "--recipe", "scene") == 0
    assert _files(again) == scene
    assert (
        JOB.main(
            [
                "--out",
                str(bigger),
                "--max-per-class",
                str(PER_CLASS + 2),
                "--no-progress",
                "--source-root",
                fashion_mnist_root,
                "--recipe",
                "scene",
            ]
        )
        == 0
    )
    large = _files(bigger)
    assert set(scene) < set(large) and all(large[k] == v for k, v in scene.items())
    with Image.open(next(iter(scene_built.rglob("*.png")))) as img:
        assert img.mode == "RGB" and img.size == (32, 32)


@pytest.mark.parametrize("size", [32, 64])
def test_scene_shows_the_item(size: int, fashion_mnist_root) -> None:
    items = load_images(DataConfig(source="fashion-mnist", root=fashion_mnist_root), "train").images[:20, 0]
    for index, item in enumerate(items):
        image, alpha = JOB.render_scene(item, JOB.item_rng(0, "train", index, "scene"), size)
        # a blank item gets the same draws: the same backdrop, finish and noise, without the item and its shadow
        backdrop, no_alpha = JOB.render_scene(np.zeros_like(item), JOB.item_rng(0, "train", index, "scene"), size)
        assert image.shape == (size, size, 3) and image.dtype == np.uint8 and not no_alpha.any()
        covered = alpha > 0.5
        assert covered.sum() > 0.05 * size * size  # the item covers a good part of the image (sandals: little)
        diff = np.abs(image.astype(int) - backdrop).sum(axis=2)  # [R, R], 0..765
        assert diff[covered].mean() > 80, index  # the item stands out from what lies behind it
        assert diff[covered].mean() > 2 * diff[~covered].mean(), index  # and more than its shadow does
    # scene's stream is its own: the same (seed, split, index) gives tint another image
    tint, _ = JOB.render(items[0], JOB.item_rng(0, "train", 0), size)
    scene, _ = JOB.render_scene(items[0], JOB.item_rng(0, "train", 0, "scene"), size)
    assert np.abs(tint.astype(int) - scene).mean() > 10


def test_64_px(tmp_path: Path, fashion_mnist_root) -> None:
    out = tmp_path / "set64"
    assert (
        JOB.main(
            [
                "--out",
                str(out),
                "--resolution",
                "64",
                "--max-per-class",
                "1",
                "--no-progress",
                "--source-root",
                fashion_mnist_root,
            ]
        )
        == 0
    )
    pngs = sorted(out.rglob("*.png"))
    assert len(pngs) == 2 * K
    with Image.open(pngs[0]) as img:
        assert img.size == (64, 64) and img.mode == "RGB"


def test_existing_out_is_refused_with_exit_2_and_overwrite_replaces_it(
    tmp_path: Path, fashion_mnist_root, capsys
) -> None:
    out = tmp_path / "set"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert _make(out, "--source-root", fashion_mnist_root) == 2
    assert "already exists" in capsys.readouterr().err and (out / "keep.txt").exists()
    assert _make(out, "--source-root", fashion_mnist_root, "--overwrite") == 0
    assert not (out / "keep.txt").exists() and len(_files(out)) == 2 * K * PER_CLASS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]  # no temporary or old folder left


def test_missing_idx_files_exit_1_and_leave_nothing(tmp_path: Path, capsys) -> None:
    out = tmp_path / "set"
    assert _make(out, "--source-root", str(tmp_path / "nowhere")) == 1
    assert "not found" in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_help_explains_and_bad_resolution_or_recipe_is_a_usage_error() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def run(*a: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(SCRIPT), *a], capture_output=True, text=True, env=env, timeout=120)

    proc = run("--help")
    assert proc.returncode == 0
    for text in ("--resolution", "--max-per-class", "--overwrite", "exit codes", "OUT/train/", "--recipe"):
        assert text in proc.stdout
    for text in ("tint", "scene", "drop shadow", "texture"):  # both recipes are explained
        assert text in proc.stdout
    proc = run("--out", "x", "--resolution", "48")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
    proc = run("--out", "x", "--recipe", "watercolour")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr and "scene" in proc.stderr
