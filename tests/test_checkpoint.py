"""Checkpoint format: make_payload -> disk -> restore_training_state gives back the exact training state;
checkpoints written before ``model.arch`` still load."""

from __future__ import annotations

import os

import pytest
import torch

from synthgen import checkpoint as ckpt
from synthgen.config import ExperimentConfig, from_dict, to_dict
from synthgen.errors import CheckpointError, StorageError
from synthgen.train.step import GANStep, build_gan_step

SHAPE = (1, 28, 28)
NUM_CLASSES = 10


def tiny_config(**model) -> ExperimentConfig:
    """A small cdcgan with LeCam on (so its running averages are part of the state) and an early EMA."""
    spec = {
        "name": "cdcgan",
        "z_dim": 8,
        "arch": {"g_channels": 8, "d_channels": 8},
        "ema_start": 1,
        "lecam_weight": 0.3,
        **model,
    }
    return from_dict(ExperimentConfig, {"model": spec, "train": {"batch_size": 8}})


def new_step(cfg: ExperimentConfig, seed: int) -> GANStep:
    torch.manual_seed(seed)
    return build_gan_step(cfg, SHAPE, NUM_CLASSES, torch.device("cpu"))


def train_steps(gan_step: GANStep, first: int, last: int, seed: int) -> list[float]:
    """Run steps first..last on fixed random 'real' batches; return the D losses."""
    torch.manual_seed(seed)
    losses = []
    for step in range(first, last + 1):
        real = torch.rand(8, *SHAPE) * 2 - 1  # [8, 1, 28, 28] in [-1, 1]
        labels = torch.randint(NUM_CLASSES, (8,))  # [8]
        d_loss, _ = gan_step(real, labels, step)
        losses.append(d_loss.item())
    return losses


def save(gan_step: GANStep, cfg: ExperimentConfig, folder: str, step: int) -> str:
    payload = ckpt.make_payload(
        gan_step.training_state(),
        step=step,
        config=cfg,
        class_names=[str(i) for i in range(NUM_CLASSES)],
        image_shape=SHAPE,
    )
    return ckpt.write_checkpoint_dir(os.path.join(folder, ckpt.checkpoint_name(step)), payload, cfg)


def assert_same_state(a: GANStep, b: GANStep) -> None:
    for name, x, y in [("G", a.G, b.G), ("D", a.D, b.D), ("EMA", a.ema.module, b.ema.module)]:
        sa, sb = x.state_dict(), y.state_dict()
        assert sa.keys() == sb.keys(), name
        for key in sa:
            assert torch.equal(sa[key], sb[key]), f"{name}.{key}"
    for name, x, y in [("opt_g", a.opt_g, b.opt_g), ("opt_d", a.opt_d, b.opt_d)]:
        sa, sb = x.state_dict()["state"], y.state_dict()["state"]
        assert sa.keys() == sb.keys() and len(sa) > 0, name
        for pid in sa:
            for key in sa[pid]:  # step, exp_avg, exp_avg_sq
                assert torch.equal(torch.as_tensor(sa[pid][key]), torch.as_tensor(sb[pid][key])), f"{name}[{pid}].{key}"
    la, lb = a.lecam.state_dict(), b.lecam.state_dict()
    assert la.keys() == lb.keys() and all(torch.equal(la[k], lb[k]) for k in la)


def test_save_then_restore_gives_back_the_exact_training_state(tmp_path):
    cfg = tiny_config()
    trained = new_step(cfg, seed=0)
    train_steps(trained, 1, 3, seed=1)
    folder = save(trained, cfg, str(tmp_path), step=3)

    fresh = new_step(cfg, seed=99)  # other initial weights, empty optimizers, zero LeCam averages
    step = ckpt.restore_training_state(ckpt.load_payload(folder), fresh.training_state())
    assert step == 3
    assert fresh.lecam.state_dict()["ema_real"].item() != 0.0  # LeCam's averages came back, not zeros
    assert_same_state(trained, fresh)
    # The restored run continues exactly like the one that never stopped (same random draws).
    assert train_steps(fresh, 4, 5, seed=2) == train_steps(trained, 4, 5, seed=2)
    assert_same_state(trained, fresh)


def test_restore_into_networks_of_another_width_is_a_checkpoint_error(tmp_path):
    cfg = tiny_config()
    folder = save(new_step(cfg, seed=0), cfg, str(tmp_path), step=1)
    wider = new_step(tiny_config(arch={"g_channels": 16, "d_channels": 16}), seed=0)
    with pytest.raises(CheckpointError, match="does not fit"):
        ckpt.restore_training_state(ckpt.load_payload(folder), wider.training_state())


def test_restore_from_a_payload_without_training_keys_is_refused():
    gan_step = new_step(tiny_config(), seed=0)
    with pytest.raises(CheckpointError, match=r"lacks \['opt_g', 'opt_d'\]"):
        ckpt.restore_training_state(
            {"generator": {}, "discriminator": {}, "generator_ema": {}, "step": 1}, gan_step.training_state()
        )


@pytest.mark.parametrize("name, arch", [("cdcgan", {"g_channels": 8, "d_channels": 16}), ("mlp", {})])
def test_checkpoint_with_the_old_flat_model_widths_still_loads(tmp_path, name, arch):
    cfg = tiny_config(name=name, arch=arch)
    folder = save(new_step(cfg, seed=0), cfg, str(tmp_path), step=2)
    # Rewrite the payload as a checkpoint from before model.arch: widths flat in the model section.
    path = os.path.join(folder, ckpt.MODEL_FILE)
    payload = torch.load(path, weights_only=True)
    legacy = to_dict(cfg)
    legacy["model"].pop("arch")
    legacy["model"].update(g_channels=8, d_channels=16)  # mlp ignored them then
    payload["config"] = legacy
    torch.save(payload, path)

    generator, info = ckpt.load_generator(folder)
    assert info.config.model.arch == arch and info.step == 2
    assert generator(torch.randn(3, 8), torch.arange(3)).shape == (3, *SHAPE)


def test_a_uri_run_folder_lists_the_same_complete_checkpoints_as_its_local_path(tmp_path):
    from synthgen.train.untrained import write_random_checkpoint

    run = tmp_path / "run"
    for step in (4, 12):
        write_random_checkpoint(str(run), step=step, seed=step)
    os.makedirs(run / "checkpoint-000016")  # an interrupted checkpoint: no model.pt, not listed
    local = ckpt.list_checkpoints(str(run))
    uri = ckpt.list_checkpoints(f"file://{run}")
    assert [s for s, _ in local] == [s for s, _ in uri] == [4, 12]
    assert [p for _, p in uri] == [f"file://{p}" for _, p in local]  # URIs stay URIs for the later stages
    assert ckpt.list_checkpoints(f"file://{tmp_path}/none") == []


def test_a_checkpoint_uri_whose_filesystem_cannot_be_opened_is_a_typed_error_naming_it(tmp_path):
    with pytest.raises(StorageError, match=r"cannot open 'nosuchfs://bucket/run'.*URI scheme"):
        ckpt.resolve_checkpoint("nosuchfs://bucket/run")
    with pytest.raises(CheckpointError, match="does not exist"):  # an openable URI with nothing there
        ckpt.resolve_checkpoint(f"file://{tmp_path}/none")
