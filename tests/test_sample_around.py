"""``synthgen sample --around``: provenance, determinism, rebalancing, refusals, dry run, kill -9 and resume.

A tiny untrained checkpoint (classes a, b, c) and a 10-image imagefolder real set (5, 3, 2 images) keep each
run to seconds; the inversion takes 5 steps (the tests check the machinery, not the reconstructions).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image
from shard_data import provenance_rows, shard_shas

from synthgen.checkpoint import load_generator
from synthgen.cli import main as cli_main
from synthgen.config import ExperimentConfig, from_dict
from synthgen.data.shard_dataset import SyntheticShardDataset, load_source_ids
from synthgen.errors import ConfigError
from synthgen.invert.inversion import invert, neighbour_latents
from synthgen.pixels import to_uint8
from synthgen.sample.around import around_counts, chunk_file, variations_per_image
from synthgen.sample.config import SampleConfig
from synthgen.sample.run import run_sample
from synthgen.sample.verify import verify_output
from synthgen.train.untrained import write_random_checkpoint

CLASSES, SIZES, PER_IMAGE = ("a", "b", "c"), (5, 3, 2), 4  # 10 real images -> 40 samples


def _folder(root, classes=CLASSES, sizes=SIZES, seed=0) -> str:
    rng = np.random.default_rng(seed)
    for name, n in zip(classes, sizes):
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for k in range(n):
            Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(os.path.join(root, name, f"{k}.png"))
    return str(root)


def _yaml(path, **keys) -> str:
    path.write_text("".join(f"{k}: {v}\n" for k, v in keys.items()))
    return str(path)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(checkpoint, real-set YAML) of a small conditional generator and an imagefolder real set."""
    base = tmp_path_factory.mktemp("around")
    cfg = from_dict(
        ExperimentConfig, {"model": {"name": "cdcgan", "z_dim": 16, "arch": {"g_channels": 16, "d_channels": 16}}}
    )
    checkpoint = write_random_checkpoint(str(base / "run"), cfg, class_names=CLASSES)
    return checkpoint, _yaml(base / "real.yaml", source="imagefolder", root=_folder(base / "real"))


def _cfg(setup, out, **kw) -> SampleConfig:
    checkpoint, real = setup
    base = dict(
        checkpoint=checkpoint,
        out=str(out),
        around=real,
        per_image=PER_IMAGE,
        format="both",
        images_per_shard=16,
        num_actors=2,
        batch_size=64,
        inversion_steps=5,
        inversion_chunk=4,
        encoder="none",
        progress=False,
    )
    return SampleConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def reference(ray_cluster, setup, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "out"
    return str(out), run_sample(_cfg(setup, out))


@pytest.mark.ray
def test_provenance_columns_manifest_and_loaders(reference, setup):
    out, result = reference
    rows, m = provenance_rows(out), result.manifest
    assert list(rows) == list(range(40)) and m["per_class"] == {"a": 20, "b": 12, "c": 8}
    # real images in order (a/0..a/4, b/0.., c/0..), PER_IMAGE consecutive variations each
    expect = [f"{c}/{k}.png" for c, n in zip(CLASSES, SIZES) for k in range(n)]
    assert [rows[i][1] for i in range(40)] == [i // PER_IMAGE for i in range(40)]
    assert [rows[i][2] for i in range(40)] == [expect[i // PER_IMAGE] for i in range(40)]
    assert [rows[i][0] for i in range(40)] == [CLASSES.index(expect[i // PER_IMAGE][0]) for i in range(40)]
    around = m["around"]
    assert (
        around["real"]["kind"] == "imagefolder" and around["real"]["size"] == 10 and len(around["real"]["digest"]) == 64
    )
    assert around["inversion"]["steps"] == 5 and around["inversion"]["encoder"]["used"] is False
    assert 0 < around["reconstruction_mse"] <= around["start_mse"]
    hf = json.loads(pq.read_schema(os.path.join(out, m["shards"][0]["file"])).metadata[b"huggingface"])
    assert hf["info"]["features"]["source_id"] == {"dtype": "int64", "_type": "Value"}
    ds = SyntheticShardDataset(out)
    assert ds.source_ids.tolist() == [i // PER_IMAGE for i in range(40)]
    assert load_source_ids(out).tolist() == ds.source_ids.tolist()
    assert verify_output(out).ok
    # image (i, j) = G(z_i + sigma * eps(seed, i, j), y_i), z_i read from the inversion chunk file
    generator, _ = load_generator(setup[0])
    chunk = np.load(os.path.join(out, chunk_file(1)))  # real images 4..7
    z = neighbour_latents(torch.from_numpy(chunk["latents"]), np.array([1]), np.array([5]), np.array([3]), 0.7, 0)
    with torch.no_grad():
        pixels = to_uint8(generator(z, torch.tensor([1]))).numpy()[0, 0]  # real image 5 is b/0
    assert np.array_equal(
        np.asarray(Image.open(os.path.join(out, "png", "b", f"{5 * PER_IMAGE + 3:012d}.png"))), pixels
    )


@pytest.mark.ray
def test_bytes_do_not_depend_on_actors_batch_or_shard_size(reference, setup, tmp_path):
    out = tmp_path / "other"
    run_sample(_cfg(setup, out, num_actors=1, batch_size=128, images_per_shard=24, format="parquet"))
    assert provenance_rows(str(out)) == provenance_rows(reference[0])


@pytest.mark.ray
def test_killed_actors_and_a_resume_give_the_identical_dataset(reference, setup, tmp_path, inject_faults, capfd):
    out = tmp_path / "killed"
    # actor 0 of the inversion pool and of the sampling fleet each kill -9 themselves after one call
    inject_faults("sample.fail_after_batches=1")
    result = run_sample(_cfg(setup, out, num_actors=1, batch_size=64, images_per_shard=16))
    inject_faults("")
    assert result.stats.actor_restarts >= 1 and shard_shas(result.manifest) == shard_shas(reference[1].manifest)
    # a killed driver: a shard, an inversion chunk and the manifest gone -> only those are redone
    for rel in ("manifest.json", "parquet/shard-000001.parquet", "png_index/shard-000001.json", chunk_file(2)):
        os.remove(os.path.join(out, rel))
    again = run_sample(_cfg(setup, out))
    assert (again.shards_written, again.shards_reused) == (1, 2) and os.path.exists(os.path.join(out, chunk_file(2)))
    assert shard_shas(again.manifest) == shard_shas(reference[1].manifest) and verify_output(str(out)).ok
    # the restartable actors take nothing from the object store in their constructors (Ray logs an error
    # line for that, ray#53727): what they load comes with their calls
    assert "constructor arguments in the object store" not in capfd.readouterr().err


@pytest.mark.ray
def test_the_run_encoder_starts_each_inversion_with_encoder_steps_and_lr(setup, tmp_path):
    from synthgen.invert.encoder import EncoderConfig, encode
    from synthgen.invert.encoder_train import train_encoder

    cfg = from_dict(
        ExperimentConfig, {"model": {"name": "cdcgan", "z_dim": 16, "arch": {"g_channels": 16, "d_channels": 16}}}
    )
    run = write_random_checkpoint(str(tmp_path / "run"), cfg, class_names=CLASSES)
    info = train_encoder(EncoderConfig(checkpoint=run, steps=3, channels=8, real_data="none", progress=False))
    out = tmp_path / "out"
    result = run_sample(_cfg((run, setup[1]), out, encoder="auto", encoder_steps=2, encoder_lr=0.003, format="parquet"))
    inversion = result.manifest["around"]["inversion"]
    assert inversion["encoder"]["used"] is True and inversion["encoder"]["digest"] == info.digest
    assert (inversion["steps"], inversion["lr"], inversion["restarts"]) == (2, 0.003, 0)
    # chunk 0 holds real images a/0..a/3: their latents are E's start refined by 2 steps at lr 0.003
    generator, _ = load_generator(run)
    from synthgen.invert.encoder import load_encoder

    encoder, _ = load_encoder(run)
    root = os.path.dirname(setup[1]) + "/real"
    images = np.stack([np.asarray(Image.open(f"{root}/a/{k}.png"))[None] for k in range(4)])  # [4, 1, 28, 28]
    labels = np.zeros(4, dtype=np.int64)
    expect = invert(generator, images, labels, steps=2, lr=0.003, init=encode(encoder, images, labels))
    chunk = np.load(os.path.join(out, chunk_file(0)))
    assert chunk["ids"].tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(chunk["latents"], expect.latents.numpy(), atol=1e-4)
    assert not np.allclose(
        chunk["latents"],
        invert(generator, images, labels, steps=2, lr=0.05, init=encode(encoder, images, labels)).latents.numpy(),
        atol=1e-4,
    )


def test_class_weights_rebalance_rare_classes_exactly():
    labels = np.repeat(np.arange(3), SIZES)  # [10]
    cfg = SampleConfig(checkpoint="x", out="y", around="train", per_image=PER_IMAGE)
    assert around_counts(cfg, CLASSES, SIZES) == [20, 12, 8]  # auto: follow the real set
    uniform = around_counts(
        SampleConfig(checkpoint="x", out="y", around="train", per_image=PER_IMAGE, class_weights="uniform"),
        CLASSES,
        SIZES,
    )
    assert uniform == [14, 13, 13]
    v = variations_per_image(labels, uniform, SIZES)
    assert [int(v[labels == c].sum()) for c in range(3)] == uniform
    assert v.tolist() == [3, 3, 3, 3, 2, 5, 4, 4, 7, 6]  # rare classes get more; the first images the remainder
    with pytest.raises(ConfigError, match="per_image=4 x 10 real images = 40"):
        around_counts(
            SampleConfig(checkpoint="x", out="y", around="train", per_image=PER_IMAGE, num_samples=50), CLASSES, SIZES
        )


def test_restarts_do_not_depend_on_the_chunk():
    torch.manual_seed(0)
    cfg = from_dict(ExperimentConfig, {"model": {"z_dim": 8, "arch": {"g_channels": 8, "d_channels": 8}}})
    from synthgen.models import build_models

    g, _ = build_models(cfg.model, (1, 28, 28), 3)
    images = np.random.default_rng(0).integers(0, 255, (6, 1, 28, 28), dtype=np.uint8)
    labels = np.arange(6) % 3
    whole = invert(g.eval(), images, labels, steps=0, restarts=3, seed=4)
    part = invert(g, images[3:5], labels[3:5], steps=0, restarts=3, seed=4, image_ids=np.array([3, 4]))
    assert torch.equal(whole.latents[3:5], part.latents)


@pytest.mark.parametrize("what", ["test_split", "around_test", "test_folder", "classes", "out_is_file"])
def test_refusals_write_nothing(setup, tmp_path, what):
    out = tmp_path / "out"
    kw = {}
    if what == "test_split":
        kw["around"] = _yaml(tmp_path / "t.yaml", source="imagefolder", root=_folder(tmp_path / "r"), split="test")
    elif what == "around_test":
        kw["around"] = "test"
    elif what == "test_folder":
        kw["around"] = _yaml(tmp_path / "t.yaml", source="imagefolder", root=_folder(tmp_path / "test"))
    elif what == "classes":
        kw["around"] = _yaml(tmp_path / "t.yaml", source="imagefolder", root=_folder(tmp_path / "r", ("x", "y", "z")))
    else:
        out.write_text("a file")
    match = {"classes": "differ from the checkpoint", "out_is_file": "existing file"}.get(what, "test")
    with pytest.raises(ConfigError, match=match):
        run_sample(_cfg(setup, out, **kw))
    assert (not out.exists()) if what != "out_is_file" else out.read_text() == "a file"


def test_dry_run_shows_the_plan_and_writes_nothing(setup, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli_main(
        [
            "sample",
            "--checkpoint",
            setup[0],
            "--around",
            setup[1],
            "--out",
            str(out),
            "--per-image",
            "3",
            "--class-weights",
            "uniform",
            "--encoder",
            "none",
            "--dry-run",
        ]
    )
    text = capsys.readouterr().out
    assert code == 0 and not out.exists()
    assert "10 real images" in text and "per class: {'a': 10, 'b': 10, 'c': 10}" in text
    assert "variations per image (per class): {'a': [2], 'b': [3, 4], 'c': [5]}" in text and "no encoder" in text
