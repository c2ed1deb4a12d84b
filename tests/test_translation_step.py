"""synthgen.train.translation_step: one D + G update of pix2pix / cyclegan, and its checkpoint round trip."""

from __future__ import annotations

import torch

from synthgen import checkpoint as ckpt
from synthgen.config import ExperimentConfig
from synthgen.models.cyclegan import CycleGANObjective, CycleGANOptions, build_cyclegan
from synthgen.models.pix2pix import Pix2PixObjective, Pix2PixOptions, build_pix2pix
from synthgen.train.translation_step import TranslationStep

SHAPE_A, SHAPE_B = (1, 32, 32), (3, 32, 32)


def _step(paired: bool, seed: int = 0) -> TranslationStep:
    torch.manual_seed(seed)
    if paired:
        opts = Pix2PixOptions(g_channels=8, d_channels=8)
        G, D = build_pix2pix(opts, SHAPE_A, SHAPE_B, 3)
        objective = Pix2PixObjective(opts)
    else:
        opts = CycleGANOptions(g_channels=8, g_blocks=1, d_channels=8, pool_size=4)
        G, D = build_cyclegan(opts, SHAPE_A, SHAPE_B)
        objective = CycleGANObjective(opts, seed=0)
    return TranslationStep(ExperimentConfig(), G, D, G, D, objective)


def _batch(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    a = torch.rand((4, *SHAPE_A), generator=gen) * 2 - 1
    b = torch.rand((4, *SHAPE_B), generator=gen) * 2 - 1
    return a, b, torch.randint(3, (4,), generator=gen)


def test_a_step_updates_both_networks_and_keeps_d_trainable():
    for paired in (True, False):
        step = _step(paired)
        g0 = [p.clone() for p in step.G.parameters()]
        d0 = [p.clone() for p in step.D.parameters()]
        d_loss, g_loss = step(*_batch(0), 1)
        assert torch.isfinite(d_loss) and torch.isfinite(g_loss)
        assert any(not torch.equal(p, q) for p, q in zip(g0, step.G.parameters()))
        assert any(not torch.equal(p, q) for p, q in zip(d0, step.D.parameters()))
        assert all(p.requires_grad for p in step.D.parameters())  # frozen only during G's update


def test_g_update_does_not_touch_d_and_d_update_does_not_touch_g():
    step = _step(True)
    a, b, y = _batch(0)
    out = step.objective.generate(step.G, a, b, y)
    step.objective.d_loss(step.D, a, b, y, out).backward()
    assert all(p.grad is None or not p.grad.any() for p in step.G.parameters())  # fakes are detached for D


def test_the_nan_fault_poisons_the_d_loss_at_its_step():
    step = _step(False)
    step.nan_at_step = 2
    assert torch.isfinite(step(*_batch(0), 1)[0])
    assert torch.isnan(step(*_batch(1), 2)[0])


def test_a_checkpoint_restores_the_step_exactly(tmp_path):
    """Save after 2 steps, restore into a fresh step, and the next step's losses equal the uninterrupted run's."""
    for paired in (True, False):
        first = _step(paired)
        for k in range(1, 3):
            first(*_batch(k), k)
        payload = ckpt.make_payload(
            first.training_state(), step=2, config=ExperimentConfig(), class_names=["a", "b", "c"], image_shape=SHAPE_B
        )
        folder = ckpt.write_checkpoint_dir(str(tmp_path / f"paired{paired}"), payload, ExperimentConfig())
        payload = ckpt.load_payload(folder)  # through the file, as a restarted worker reads it
        second = _step(paired, seed=1)
        assert ckpt.restore_training_state(payload, second.training_state()) == 2
        if not paired:  # the pools are not part of a checkpoint: start both runs' pools alike
            second.objective = CycleGANObjective(first.objective.opts, seed=0)
            first.objective = CycleGANObjective(first.objective.opts, seed=0)
        torch.manual_seed(5)
        expect = first(*_batch(3), 3)
        torch.manual_seed(5)
        got = second(*_batch(3), 3)
        assert torch.equal(expect[0], got[0]) and torch.equal(expect[1], got[1])
        assert all(torch.equal(p, q) for p, q in zip(first.ema.module.parameters(), second.ema.module.parameters()))
