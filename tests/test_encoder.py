"""The latent encoder (fast inversion): network shapes, ``encode``, training, the file round trip,
``invert(init=...)`` and ``synthgen train-encoder``.

Generators are tiny and untrained (the tests check the machinery and that training learns something,
not a trained model's figures); ``benchmarks/bench_invert.py`` measures a real one.
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest
import torch
import yaml

from synthgen.checkpoint import load_generator
from synthgen.cli import main
from synthgen.config import ExperimentConfig, ModelConfig, from_dict
from synthgen.errors import CheckpointError, ConfigError
from synthgen.invert.encoder import EncoderConfig, encode, encoder_dir, load_encoder
from synthgen.invert.encoder_train import fit_encoder, heldout_errors, train_encoder
from synthgen.invert.inversion import invert
from synthgen.models import build_models
from synthgen.models.encoder import LatentEncoder, encoder_for
from synthgen.pixels import to_float, to_uint8
from synthgen.train.untrained import write_random_checkpoint
from tests.job_module import load_job

Z_DIM, NUM_CLASSES = 16, 3
TINY = {"model": {"z_dim": Z_DIM, "arch": {"g_channels": 8, "d_channels": 8}}}


def tiny_checkpoint(run: str, seed: int = 0) -> str:
    """An untrained tiny cdcgan checkpoint (Fashion-MNIST shape, 10 classes) in ``run``; returns ``run``."""
    write_random_checkpoint(run, from_dict(ExperimentConfig, TINY), seed=seed)
    return run


def quick_config(run: str, **kw) -> EncoderConfig:
    """A seconds-long encoder training config for the tiny checkpoint."""
    return EncoderConfig(**{"checkpoint": run, "steps": 3, "channels": 8, "real_data": "none", "progress": False, **kw})


@pytest.fixture(scope="module")
def generator() -> torch.nn.Module:
    """A tiny conditional generator whose images differ by latent (output layer scaled up, as in
    tests/test_sample_inversion.py: at initialisation its images are almost flat grey)."""
    torch.manual_seed(0)
    g, _ = build_models(ModelConfig(z_dim=Z_DIM, arch={"g_channels": 8, "d_channels": 8}), (1, 28, 28), NUM_CLASSES)
    with torch.no_grad():
        g.to_image.weight.mul_(30.0)
    return g.eval()


def test_encoder_maps_images_to_latents_for_1_and_3_channels():
    for shape in [(1, 28, 28), (3, 32, 32)]:
        enc = LatentEncoder(Z_DIM, shape, NUM_CLASSES, channels=8)
        z = enc(torch.zeros(5, *shape), torch.arange(5) % NUM_CLASSES)
        assert z.shape == (5, Z_DIM) and z.dtype == torch.float32
    g, _ = build_models(ModelConfig(z_dim=24, arch={"g_channels": 8, "d_channels": 8}), (3, 32, 32), 4)
    enc = encoder_for(g, channels=8)
    assert (enc.z_dim, enc.image_shape, enc.num_classes) == (24, (3, 32, 32), 4)
    with pytest.raises(ValueError, match="labels"):
        enc(torch.zeros(2, 3, 32, 32), None)


def test_encode_is_deterministic_and_batch_size_independent():
    torch.manual_seed(0)
    enc = LatentEncoder(Z_DIM, (1, 28, 28), NUM_CLASSES, channels=8)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (70, 1, 28, 28), dtype=np.uint8)  # not a multiple of the chunk
    labels = rng.integers(0, NUM_CLASSES, 70)
    whole = encode(enc, images, labels)
    assert whole.shape == (70, Z_DIM) and whole.device.type == "cpu"
    for bs in (1, 7, 64, 1000):
        assert torch.equal(encode(enc, images, labels, batch_size=bs), whole), bs
    assert torch.equal(encode(enc, images[5:6], labels[5:6])[0], whole[5])  # a row alone = the row in a batch
    assert not torch.equal(whole[0], whole[1])  # different images, different latents
    with pytest.raises(ConfigError, match="uint8"):
        encode(enc, images.astype(np.float32), labels)
    with pytest.raises(ConfigError, match="one label each"):
        encode(enc, images, labels[:3])


def test_training_lowers_the_latent_and_pixel_error(generator):
    torch.manual_seed(0)
    untrained = heldout_errors(encoder_for(generator, channels=8), generator, num=256)
    cfg = EncoderConfig(
        steps=100, batch_size=32, channels=8, latent_weight=1.0, real_data="none", progress=False, lr=2e-3
    )
    encoder, losses = fit_encoder(generator, cfg)
    trained = heldout_errors(encoder, generator, num=256)
    assert trained["heldout_latent_mse"] < 0.6 * untrained["heldout_latent_mse"], (untrained, trained)
    assert trained["heldout_pixel_mse"] < 0.6 * untrained["heldout_pixel_mse"], (untrained, trained)
    assert set(losses) == {"train_latent", "train_pixel"}
    assert all(p.requires_grad for p in generator.parameters())  # frozen only while training


def test_train_encoder_writes_a_folder_that_loads_back(tmp_path):
    run = tiny_checkpoint(str(tmp_path / "run"))
    cfg = quick_config(run)
    info = train_encoder(cfg)
    folder = encoder_dir(run, 0)
    assert info.path == folder and sorted(os.listdir(folder)) == ["config.yaml", "model.pt"]
    assert [n for n in os.listdir(os.path.dirname(folder)) if n.startswith(".")] == []  # no temp left
    generator, ckpt = load_generator(run)
    meta = yaml.safe_load(open(os.path.join(folder, "config.yaml")))
    assert meta["generator"] == {"path": ckpt.path, "digest": ckpt.digest, "step": 0}
    assert meta["encoder_config"]["steps"] == 3 and meta["z_dim"] == Z_DIM
    assert meta["train_cpu_seconds"] > 0 and info.train_cpu_seconds == meta["train_cpu_seconds"]

    for path in (run, os.path.join(run, "checkpoint-000000")):
        encoder, loaded = load_encoder(path)
        assert loaded == info
        assert (loaded.generator_digest, loaded.z_dim, loaded.image_shape) == (ckpt.digest, Z_DIM, (1, 28, 28))
        assert loaded.class_names == ckpt.class_names and loaded.config == cfg
    # training is deterministic: the same config in memory gives the very weights that were saved
    again, _ = fit_encoder(generator, cfg)
    for key, value in again.state_dict().items():
        assert torch.equal(encoder.state_dict()[key], value), key


def test_an_encoder_is_refused_for_other_generator_weights_and_not_overwritten_silently(tmp_path, caplog):
    run = tiny_checkpoint(str(tmp_path / "run"))
    assert load_encoder(run) is None  # none trained yet
    train_encoder(quick_config(run))
    model = os.path.join(encoder_dir(run, 0), "model.pt")
    before = open(model, "rb").read()
    with pytest.raises(CheckpointError, match="--overwrite"):
        train_encoder(quick_config(run, seed=1))
    assert open(model, "rb").read() == before
    train_encoder(quick_config(run, seed=1, overwrite=True))
    assert open(model, "rb").read() != before

    tiny_checkpoint(run, seed=7)  # same step, other weights: the run was retrained under the same name
    with caplog.at_level(logging.WARNING, logger="synthgen"):
        assert load_encoder(run) is None
    assert "another generator" in caplog.text


def test_invert_from_init_with_zero_steps_returns_init_and_its_error(generator):
    z = torch.randn(10, Z_DIM, generator=torch.Generator().manual_seed(3))  # [10, z_dim]
    y = torch.arange(10) % NUM_CLASSES
    with torch.no_grad():
        images = to_uint8(generator(z, y)).numpy()
    init = z + 0.5 * torch.randn(10, Z_DIM, generator=torch.Generator().manual_seed(4))
    inv = invert(generator, images, y.numpy(), init=init, steps=0)
    assert torch.equal(inv.latents, init)
    with torch.no_grad():
        err = float((generator(init, y) - to_float(images)).pow(2).mean())
    assert inv.mse == pytest.approx(err, rel=1e-5) and inv.start_mse == pytest.approx(err, rel=1e-5)
    refined = invert(generator, images, y.numpy(), init=init, steps=30, batch_size=4)
    assert refined.start_mse == pytest.approx(err, rel=1e-5) and refined.mse < 0.8 * err
    with pytest.raises(ConfigError, match="init"):
        invert(generator, images, y.numpy(), init=init[:3], steps=0)


def _tree(root) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def test_cli_dry_run_writes_nothing_and_errors_exit_2_or_1(tmp_path, capsys):
    run = tiny_checkpoint(str(tmp_path / "run"))
    before = _tree(tmp_path)
    assert main(["train-encoder", "--checkpoint", run, "--set", "steps=7", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "steps: 7" in out and "encoder-000000" in out and _tree(tmp_path) == before
    assert main(["train-encoder"]) == 2  # no checkpoint
    assert main(["train-encoder", "--checkpoint", run, "--set", "stepz=3"]) == 2  # unknown key
    assert main(["train-encoder", "--checkpoint", run, "--set", "real_data=test"]) == 2  # never the test split
    assert main(["train-encoder", "--checkpoint", "s3://bucket/run"]) == 2  # remote: not supported
    assert main(["train-encoder", "--checkpoint", str(tmp_path / "missing")]) == 1
    assert _tree(tmp_path) == before
    assert "train-encoder" in capsys.readouterr().err


def test_cli_trains_on_real_images_and_refuses_a_second_run(tmp_path, capsys, fashion_mnist_root):
    run = tiny_checkpoint(str(tmp_path / "run"))  # its data config: the real Fashion-MNIST training split
    args = ["train-encoder", "--checkpoint", run, "--steps", "2", "--set", "channels=8", "--no-progress"]
    assert main(args) == 0
    assert "encoder:" in capsys.readouterr().out
    encoder, info = load_encoder(run)
    assert info.config.real_data == "train" and {"train_real", "train_prior"} <= set(info.losses)
    assert main(args) == 1 and "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0


def test_bench_invert_smoke_runs(capsys):
    bench_invert = load_job("bench_invert", "benchmarks")
    assert bench_invert.main(["--smoke-test"]) == 0
    out = capsys.readouterr().out
    assert "optimisation only" in out and "encoder + k" in out and "target" in out
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    base = rows[0]
    assert base["encoder_train_cpu_seconds"] > 0 and "pays for itself" in out
    for row in rows[1:]:  # break-even: the images after which the encoder's training cost is paid back
        saving = (base["cpu_seconds"] - row["cpu_seconds"]) / row["num_images"]
        assert (
            row["break_even_images"] is None
            if saving <= 0
            else row["break_even_images"] == pytest.approx(row["encoder_train_cpu_seconds"] / saving, rel=1e-3)
        )
