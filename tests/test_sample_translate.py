"""``synthgen sample --translate``: provenance and the translator's own output, determinism across actors and
shards, kill -9 and resume, synthgen datasets as input, refusals that write nothing, and the dry run.

Tiny untrained translators (a class-conditional pix2pix on outlines, a gray -> RGB cyclegan) and a 9-image
32 px imagefolder keep each run to seconds: the tests check the machinery, not what a translator learned.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image
from shard_data import provenance_rows, shard_shas

from synthgen.cli import main as cli_main
from synthgen.config import DataConfig, ExperimentConfig, from_dict
from synthgen.data.pairs import edge_maps
from synthgen.data.shard_dataset import SyntheticShardDataset
from synthgen.evaluate.sources import open_shards
from synthgen.sample.config import SampleConfig
from synthgen.sample.run import run_sample
from synthgen.sample.verify import verify_output
from synthgen.train.untrained import write_random_checkpoint
from synthgen.translation import load_translator, translate_rows

CLASSES, SIZES, PER_IMAGE = ("a", "b", "c"), (4, 3, 2), 3  # 9 input images -> 27 samples


def _folder(root, channels=1, side=32, classes=CLASSES, sizes=SIZES) -> str:
    rng = np.random.default_rng(0)
    shape = (side, side) if channels == 1 else (side, side, channels)
    for name, n in zip(classes, sizes):
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for k in range(n):
            img = np.zeros(shape, dtype=np.uint8)
            img[8:24, 8 + k : 20 + k] = rng.integers(120, 255)  # a block: outlines have edges to find
            Image.fromarray(img).save(os.path.join(root, name, f"{k}.png"))
    return str(root)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(pix2pix edges checkpoint, cyclegan checkpoint, the 9-image gray folder)."""
    base = tmp_path_factory.mktemp("translate")
    folder = _folder(base / "gray")
    data = {"source": "imagefolder", "root": folder, "resolution": 32, "channels": 1}
    pix = from_dict(
        ExperimentConfig,
        {
            "data": {**data, "pairs": "edges"},
            "model": {"name": "pix2pix", "arch": {"class_conditional": True, "g_channels": 8, "d_channels": 8}},
        },
    )
    return (
        write_random_checkpoint(str(base / "pix"), pix, class_names=CLASSES),
        gray_to_rgb_checkpoint(str(base / "cyc"), folder, "cyclegan"),
        folder,
    )


def gray_to_rgb_checkpoint(path: str, folder: str, model: str) -> str:
    """An untrained unpaired translator ``model`` of tiny width from ``folder``'s gray images to RGB ones."""
    data = {"source": "imagefolder", "root": folder, "resolution": 32, "channels": 1}
    cfg = from_dict(
        ExperimentConfig,
        {
            "data": data,
            "data_b": {**data, "channels": 3},
            "model": {"name": model, "arch": {"g_channels": 4, "g_blocks": 1, "d_channels": 4}},
        },
    )
    return write_random_checkpoint(path, cfg, class_names=CLASSES)


def _cfg(checkpoint: str, data: str, out, **kw) -> SampleConfig:
    base = dict(
        checkpoint=checkpoint,
        out=str(out),
        translate=data,
        per_image=PER_IMAGE,
        format="both",
        images_per_shard=10,
        num_actors=2,
        batch_size=64,
        chunk_size=8,
        progress=False,
    )
    return SampleConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def reference(ray_cluster, setup, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "out"
    return str(out), run_sample(_cfg(setup[0], setup[2], out))


@pytest.mark.ray
def test_rows_are_the_translators_output_with_their_inputs_provenance(reference, setup):
    out, result = reference
    rows, m = provenance_rows(out), result.manifest
    n = sum(SIZES) * PER_IMAGE
    assert list(rows) == list(range(n)) and m["per_class"] == {"a": 12, "b": 9, "c": 6}
    files = [f"{c}/{k}.png" for c, size in zip(CLASSES, SIZES) for k in range(size)]
    assert [rows[i][1] for i in range(n)] == [i // PER_IMAGE for i in range(n)]
    assert [rows[i][2] for i in range(n)] == [files[i // PER_IMAGE] for i in range(n)]
    assert [rows[i][0] for i in range(n)] == [CLASSES.index(files[i // PER_IMAGE][0]) for i in range(n)]
    t = m["translate"]
    assert (t["input"]["size"], t["per_image"], t["variation"], t["model"]) == (9, 3, "edges+dropout", "pix2pix")
    assert t["input_shape"] == [1, 32, 32] and verify_output(out).ok
    # every PNG is translate_rows' output for its id: the outlines of the inputs, rendered by the checkpoint
    G, info = load_translator(setup[0])
    images = np.stack([np.asarray(Image.open(os.path.join(setup[2], f)))[None] for f in files])  # [9, 1, 32, 32]
    labels = np.array([CLASSES.index(f[0]) for f in files])
    expect = translate_rows(
        G, edge_maps(images), labels, 0, n, per_image=PER_IMAGE, seed=0, variation=info.variation, chunk_size=8
    )
    ds = SyntheticShardDataset(out, output="tensor")
    got = np.stack([ds[i][0].numpy() for i in range(n)])
    assert got.dtype == np.uint8 and np.array_equal(got, expect)
    # K variations of one outline differ from each other (dropout, deformed outlines), as do the inputs' renders
    assert not np.array_equal(got[0], got[1]) and not np.array_equal(got[1], got[2])
    assert not np.array_equal(got[0], got[PER_IMAGE])


@pytest.mark.ray
def test_bytes_do_not_depend_on_actors_batch_or_shard_size(reference, setup, tmp_path):
    out = tmp_path / "other"
    run_sample(_cfg(setup[0], setup[2], out, num_actors=1, batch_size=16, images_per_shard=7, format="parquet"))
    assert provenance_rows(str(out)) == provenance_rows(reference[0])


@pytest.mark.ray
def test_killed_actor_and_driver_finish_the_identical_dataset(reference, setup, tmp_path, inject_faults):
    out = tmp_path / "killed"
    inject_faults("sample.fail_after_batches=1")  # actor 0 kill -9s itself after one call
    result = run_sample(_cfg(setup[0], setup[2], out, num_actors=1, batch_size=8))
    inject_faults("")
    assert result.stats.actor_restarts >= 1 and shard_shas(result.manifest) == shard_shas(reference[1].manifest)
    for rel in ("manifest.json", "parquet/shard-000001.parquet", "png_index/shard-000001.json"):
        os.remove(os.path.join(out, rel))  # what a killed driver leaves: a shard and the manifest missing
    again = run_sample(_cfg(setup[0], setup[2], out))
    assert (again.shards_written, again.shards_reused) == (1, 2)
    assert shard_shas(again.manifest) == shard_shas(reference[1].manifest) and verify_output(str(out)).ok


@pytest.mark.ray
def test_a_synthgen_dataset_translates_row_by_row(reference, setup, tmp_path):
    out = tmp_path / "rgb"
    result = run_sample(_cfg(setup[1], reference[0], out, per_image=1, format="parquet"))
    rows = provenance_rows(str(out))
    assert result.manifest["translate"]["input"]["kind"] == "synthgen" and len(rows) == 27
    assert [rows[i][2] for i in range(27)] == [f"sample:{i}" for i in range(27)]
    assert [rows[i][0] for i in range(27)] == [r[0] for r in provenance_rows(reference[0]).values()]  # labels kept
    assert SyntheticShardDataset(str(out), output="tensor")[0][0].shape == (3, 32, 32)
    # `synthgen evaluate --shards` compares translated images with domain B (data_b: 3 channels), not with A
    source = open_shards(str(out), DataConfig(), data_from_checkpoint=True)
    assert source.data_cfg.channels == 3 and source.image_shape == (3, 32, 32)
    assert source.classes_by_index  # B's folders may name the classes their own way


@pytest.mark.parametrize(
    "what, expect",
    [
        ("rgb_files", "with 3 channel"),
        ("small_files", "16x16"),
        ("other_classes", "differ from the class-conditional"),
        ("cyclegan_k3", "deterministic"),
        ("noise_checkpoint", "draws images from noise"),
        ("with_around", "cannot be combined with --translate"),
    ],
)
def test_refusals_exit_2_and_write_nothing(setup, tmp_path, capsys, what, expect):
    pix, cyc, folder = setup
    checkpoint, data, extra = pix, folder, []
    if what == "rgb_files":
        data = _folder(tmp_path / "rgb", channels=3)
    elif what == "small_files":
        data = _folder(tmp_path / "small", side=16)
    elif what == "other_classes":
        data = _folder(tmp_path / "other", classes=("x", "y", "z"))
    elif what == "cyclegan_k3":
        checkpoint = cyc
    elif what == "noise_checkpoint":
        checkpoint = write_random_checkpoint(str(tmp_path / "noise"), class_names=CLASSES)
    else:
        extra = ["--around", "train"]
    out = tmp_path / "never"
    argv = ["sample", "--checkpoint", checkpoint, "--translate", data, "--per-image", "3", "--out", str(out)]
    assert cli_main([*argv, "--no-progress", *extra]) == 2
    assert expect in capsys.readouterr().err and not out.exists()


def test_dry_run_shows_the_plan_and_writes_nothing(setup, tmp_path, capsys):
    out = tmp_path / "dry"
    argv = ["sample", "--checkpoint", setup[0], "--translate", setup[2], "--per-image", "3", "--out", str(out)]
    assert cli_main([*argv, "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "9 input images [1, 32, 32]" in text and "27 in all" in text and "elastic deformation" in text
    assert "pix2pix: [1, 32, 32] -> [1, 32, 32]" in text and not out.exists()


@pytest.fixture(scope="module")
def upscaler(tmp_path_factory):
    """(an untrained srgan x4 checkpoint 8 -> 32 px, gray: exactly bicubic; a 9-image 8 px gray folder)."""
    base = tmp_path_factory.mktemp("upscale")
    rng = np.random.default_rng(1)
    for name, n in zip(CLASSES, SIZES):
        os.makedirs(base / "small" / name)
        for k in range(n):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(base / "small" / name / f"{k}.png")
    cfg = from_dict(
        ExperimentConfig,
        {
            "data": {"source": "imagefolder", "root": str(base / "small"), "resolution": 32, "pairs": "downsample"},
            "model": {"name": "srgan", "arch": {"g_channels": 4, "g_blocks": 1, "d_channels": 4}},
        },
    )
    return write_random_checkpoint(str(base / "sr"), cfg, class_names=CLASSES), str(base / "small")


@pytest.mark.ray
def test_upscale_from_writes_each_input_upscaled_with_its_label_and_provenance(ray_cluster, upscaler, tmp_path):
    import torch

    from synthgen.models.srgan import bicubic
    from synthgen.pixels import to_float, to_uint8

    checkpoint, folder = upscaler
    out = tmp_path / "up"
    argv = ["sample", "--checkpoint", checkpoint, "--upscale-from", folder, "--out", str(out), "--no-progress"]
    assert cli_main([*argv, "--format", "parquet", "--num-actors", "1"]) == 0
    rows = provenance_rows(str(out))
    files = [f"{c}/{k}.png" for c, size in zip(CLASSES, SIZES) for k in range(size)]
    assert [rows[i][2] for i in range(9)] == files and [rows[i][1] for i in range(9)] == list(range(9))
    images = np.stack([np.asarray(Image.open(os.path.join(folder, f)))[None] for f in files])  # [9, 1, 8, 8]
    expect = to_uint8(bicubic(to_float(torch.from_numpy(images)), 4).clamp(-1, 1)).numpy()  # untrained G = bicubic
    ds = SyntheticShardDataset(str(out), output="tensor")
    got = np.stack([ds[i][0].numpy() for i in range(9)])
    assert got.shape == (9, 1, 32, 32) and np.abs(got.astype(int) - expect.astype(int)).max() <= 1
    assert verify_output(str(out)).ok


@pytest.mark.parametrize(
    "what, expect",
    [("full_size", "is 32x32 with 1 channel(s) but the checkpoint translates 8x8"), ("k2", "deterministic")],
)
def test_upscale_from_refuses_images_of_the_output_size_and_variations(upscaler, setup, tmp_path, capsys, what, expect):
    checkpoint, folder = upscaler
    data, extra = (setup[2], []) if what == "full_size" else (folder, ["--per-image", "2"])
    out = tmp_path / "never"
    argv = ["sample", "--checkpoint", checkpoint, "--upscale-from", data, "--out", str(out), "--no-progress"]
    assert cli_main([*argv, *extra]) == 2
    assert expect in capsys.readouterr().err and not out.exists()
