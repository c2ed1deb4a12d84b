"""The train step's device fast paths (``train.channels_last/precision/tf32/fused_adam/compile``), on CPU.

No test needs a GPU: the default ("auto") options must leave a CPU step bit-identical to the plain fp32
step, every path that also runs on a CPU (channels_last, bf16 autocast, fused Adam, compile) is run
here for real, and what "auto" means on CUDA is checked on the pure resolver. Tiny widths: seconds each.
"""

from __future__ import annotations

import logging
import os

import pytest
import torch

from synthgen import checkpoint as ckpt
from synthgen.config import ExperimentConfig, TrainConfig, from_dict, load_config
from synthgen.errors import ConfigError
from synthgen.log import get_logger
from synthgen.train import fast_paths
from synthgen.train.fast_paths import FastPaths, apply_backend_flags, resolve_fast_paths
from synthgen.train.step import GANStep, build_gan_step

K = 4  # classes
BATCH = 8
ALL_OFF = {"channels_last": False, "precision": "fp32", "tf32": False, "fused_adam": False, "compile": False}
MODELS = {
    # cdcgan at 28 px grayscale with LeCam: the default model and data shape
    "cdcgan": (
        {
            "model": {
                "name": "cdcgan",
                "z_dim": 8,
                "arch": {"g_channels": 8, "d_channels": 8},
                "ema_start": 1,
                "lecam_weight": 0.3,
            }
        },
        (1, 28, 28),
    ),
    # stylegan at 32 px RGB with lazy R1 (every other step), LeCam and DiffAugment: every fp32 term it has
    "stylegan": (
        {
            "data": {"resolution": 32, "channels": 3},
            "model": {
                "name": "stylegan",
                "z_dim": 8,
                "loss": "bce",
                "r1_gamma": 1.0,
                "r1_interval": 2,
                "lecam_weight": 0.1,
                "diffaugment": "translation,color",
                "ema_start": 0,
                "arch": {"channel_base": 64, "channel_max": 16, "w_dim": 16, "mapping_layers": 1},
            },
        },
        (3, 32, 32),
    ),
}


def make_config(name: str, **train) -> ExperimentConfig:
    spec, _ = MODELS[name]
    return from_dict(ExperimentConfig, {**spec, "train": {"batch_size": BATCH, **train}})


def new_step(name: str, seed: int = 0, **train) -> GANStep:
    torch.manual_seed(seed)
    return build_gan_step(make_config(name, **train), MODELS[name][1], K, torch.device("cpu"), announce=False)


def run(gan_step: GANStep, name: str, first: int, last: int, data_seed: int = 1) -> list[tuple[float, float]]:
    """Steps first..last on random 'real' batches [B, C, H, W] in [-1, 1]; return (d_loss, g_loss) per step."""
    torch.manual_seed(data_seed)  # the step's own draws (z, labels, augmentation) too
    shape = MODELS[name][1]
    out = []
    for step in range(first, last + 1):
        real = torch.rand(BATCH, *shape) * 2 - 1
        labels = torch.randint(K, (BATCH,))
        d_loss, g_loss = gan_step(real, labels, step)
        assert d_loss.dtype == torch.float32 and g_loss.dtype == torch.float32
        out.append((d_loss.item(), g_loss.item()))
    return out


def states(gan_step: GANStep) -> dict[str, torch.Tensor]:
    """Every tensor a checkpoint holds of G, D and the EMA generator, by a prefixed name."""
    return {
        f"{prefix}.{key}": value
        for prefix, module in (("G", gan_step.G), ("D", gan_step.D), ("EMA", gan_step.ema.module))
        for key, value in module.state_dict().items()
    }


def assert_close_states(a: GANStep, b: GANStep, atol: float) -> None:
    sa, sb = states(a), states(b)
    assert sa.keys() == sb.keys()
    for key in sa:
        torch.testing.assert_close(sa[key].contiguous(), sb[key].contiguous(), rtol=0, atol=atol, msg=key)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def log_records():
    """The records the synthgen logger emits during the test (whatever its propagation is set to)."""
    handler, logger = _Records(), get_logger()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler.records
    logger.removeHandler(handler)
    logger.setLevel(level)


# --- defaults: the plain step, bit for bit ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_default_options_leave_the_cpu_step_bit_identical_to_every_path_off(name: str) -> None:
    default, plain = new_step(name), new_step(name, **ALL_OFF)
    assert default.fast == FastPaths() == plain.fast  # "auto" is off on a CPU
    assert default.opt_g.defaults["fused"] is None and default.opt_d.defaults["fused"] is None
    assert run(default, name, 1, 3) == run(plain, name, 1, 3)
    sd, sp = states(default), states(plain)
    assert sd.keys() == sp.keys()
    for key in sd:
        assert torch.equal(sd[key], sp[key]) and sd[key].stride() == sp[key].stride(), key
    for a, b in ((default.opt_g, plain.opt_g), (default.opt_d, plain.opt_d)):
        for pa, pb in zip(a.state.values(), b.state.values()):
            assert all(torch.equal(pa[k], pb[k]) for k in ("step", "exp_avg", "exp_avg_sq"))


def test_auto_turns_every_fast_path_but_compile_on_for_cuda_only() -> None:
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    assert resolve_fast_paths(TrainConfig(), cuda) == FastPaths(True, True, True, True, False)
    assert resolve_fast_paths(TrainConfig(), cpu) == FastPaths()
    asked = TrainConfig(channels_last=True, precision="bf16", tf32=True, fused_adam=True, compile=True)
    assert resolve_fast_paths(asked, cpu) == FastPaths(True, True, False, True, True)  # TF32 exists on CUDA only
    off = TrainConfig(**ALL_OFF)
    assert resolve_fast_paths(off, cuda) == FastPaths()  # explicit false wins on CUDA too


def test_tf32_flags_are_set_only_when_asked() -> None:
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        apply_backend_flags(FastPaths())
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (False, False)
        apply_backend_flags(FastPaths(tf32=True))
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (True, True)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


# --- bf16 autocast ---------------------------------------------------------------------------------------


def _autocast_spy(seen: list[tuple[str, bool]], tag: str):
    def hook(module, args):
        seen.append((tag, torch.is_autocast_enabled("cpu")))

    return hook


@pytest.mark.parametrize("name", sorted(MODELS))
def test_bf16_runs_the_forwards_in_bf16_and_keeps_losses_and_penalties_fp32(name: str, monkeypatch) -> None:
    import synthgen.models.losses as losses

    penalties: list[tuple[bool, torch.dtype]] = []
    real_r1 = losses.r1_penalty

    def r1_spy(*args, **kwargs):
        value = real_r1(*args, **kwargs)
        penalties.append((torch.is_autocast_enabled("cpu"), value.dtype))
        return value

    monkeypatch.setattr(losses, "r1_penalty", r1_spy)
    gan_step = new_step(name, precision="bf16")
    assert gan_step.fast.bf16
    before = {k: v.clone() for k, v in states(gan_step).items()}
    seen: list[tuple[str, bool]] = []
    gan_step.G.register_forward_pre_hook(_autocast_spy(seen, "G"))
    gan_step.D.register_forward_pre_hook(_autocast_spy(seen, "D"))
    result = run(gan_step, name, 1, 3)

    assert all(torch.isfinite(torch.tensor(pair)).all() for pair in result)
    after = states(gan_step)
    assert all(v.dtype == before[k].dtype for k, v in after.items())  # master weights stay fp32
    moved = [k for k in before if k.startswith(("G.", "D.")) and not torch.equal(before[k], after[k])]
    assert any(k.startswith("G.") for k in moved) and any(k.startswith("D.") for k in moved)
    # G and D forwards of the step run under autocast; only penalty forwards (R1 calls D) may not
    assert ("G", True) in seen and ("D", True) in seen and ("G", False) not in seen
    # stylegan's lazy R1 runs on step 2 (interval 2): outside autocast, in fp32, D's only eager forward
    assert penalties == ([(False, torch.float32)] if name == "stylegan" else [])
    assert seen.count(("D", False)) == len(penalties)
    plain = new_step(name)
    run(plain, name, 1, 3)
    assert any(not torch.equal(after[k], v) for k, v in states(plain).items())  # bf16 really changed the math


def test_wgan_gp_penalty_runs_outside_autocast_under_bf16(monkeypatch) -> None:
    from synthgen.models.losses import WGANGPLoss

    calls: list[tuple[bool, torch.dtype, torch.dtype]] = []
    real_penalty = WGANGPLoss.penalty

    def spy(self, D, real, fake, labels, weight, generator=None):
        value = real_penalty(self, D, real, fake, labels, weight, generator)
        calls.append((torch.is_autocast_enabled("cpu"), fake.dtype, value.dtype))
        return value

    monkeypatch.setattr(WGANGPLoss, "penalty", spy)
    spec, shape = MODELS["cdcgan"]
    cfg = from_dict(
        ExperimentConfig,
        {**spec, "model": {**spec["model"], "loss": "wgan-gp"}, "train": {"batch_size": BATCH, "precision": "bf16"}},
    )
    torch.manual_seed(0)
    gan_step = build_gan_step(cfg, shape, K, torch.device("cpu"), announce=False)
    result = run(gan_step, "cdcgan", 1, 2)
    assert all(torch.isfinite(torch.tensor(pair)).all() for pair in result)
    assert calls == [(False, torch.float32, torch.float32)] * 2


# --- channels_last ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_channels_last_matches_the_default_step_within_rounding(name: str) -> None:
    nhwc, default = new_step(name, channels_last=True), new_step(name)
    kernels = [p for p in nhwc.G.parameters() if p.dim() == 4 and p.shape[-1] > 1]
    kernels += [p for p in nhwc.D.parameters() if p.dim() == 4 and p.shape[-1] > 1]
    # (a 1-channel tensor is both NCHW- and NHWC-contiguous: some kernels and cdcgan's images cannot tell)
    assert kernels and all(p.is_contiguous(memory_format=torch.channels_last) for p in kernels)
    assert any(not p.is_contiguous() for p in kernels)
    inputs: list[torch.Tensor] = []
    nhwc.D.register_forward_pre_hook(lambda module, args: inputs.append(args[0]))
    run(nhwc, name, 1, 2)
    run(default, name, 1, 2)
    # every image batch D sees, augmented or not (stylegan's config has DiffAugment on), is NHWC
    assert inputs and all(x.is_contiguous(memory_format=torch.channels_last) for x in inputs)
    if MODELS[name][1][0] > 1:
        assert not any(x.is_contiguous() for x in inputs)
    # Adam normalises each update to ~lr (4e-4..8e-4) per element: a wrong layout moves weights by that much
    assert_close_states(nhwc, default, atol=5e-5)


# --- config values ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "valid"),
    [
        ("precision", "fp16", ("auto", "fp32", "bf16")),
        ("channels_last", "sometimes", ("true", "false", "auto")),
        ("tf32", "fast", ("true", "false", "auto")),
        ("fused_adam", "maybe", ("true", "false", "auto")),
    ],
)
def test_bad_fast_path_values_name_the_key_and_the_valid_ones(key: str, value: str, valid: tuple[str, ...]) -> None:
    for build in (
        lambda: load_config(ExperimentConfig, None, [f"train.{key}={value}"]),
        lambda: from_dict(ExperimentConfig, {"train": {key: value}}),
    ):
        with pytest.raises(ConfigError) as err:
            build()
        message = str(err.value)
        assert f"train.{key}={value!r}" in message and all(v in message for v in valid), message


def test_fast_path_values_parse_from_overrides() -> None:
    cfg = load_config(
        ExperimentConfig,
        None,
        [
            "train.channels_last=true",
            "train.precision=bf16",
            "train.tf32=false",
            "train.fused_adam=auto",
            "train.compile=true",
        ],
    )
    t = cfg.train
    assert (t.channels_last, t.precision, t.tf32, t.fused_adam, t.compile) == (True, "bf16", False, "auto", True)
    defaults = TrainConfig()
    assert (defaults.channels_last, defaults.precision, defaults.tf32, defaults.fused_adam, defaults.compile) == (
        "auto",
        "auto",
        "auto",
        "auto",
        False,
    )
    with pytest.raises(ConfigError, match="train.compile"):
        load_config(ExperimentConfig, None, ["train.compile=auto"])  # compile is opt-in only


# --- fused Adam and resume -------------------------------------------------------------------------------


def _fused_supported_on_cpu() -> bool:
    major, minor = (int(x) for x in torch.__version__.split(".")[:2])
    return (major, minor) >= (2, 4)  # torch added CPU fused Adam in 2.4


def test_fused_adam_on_cpu_is_used_where_torch_has_it() -> None:
    fused, plain = new_step("cdcgan", fused_adam=True), new_step("cdcgan")
    expected = True if _fused_supported_on_cpu() else None
    assert fused.opt_g.defaults["fused"] is expected and fused.opt_d.defaults["fused"] is expected
    assert plain.opt_g.defaults["fused"] is None
    run(fused, "cdcgan", 1, 2)
    run(plain, "cdcgan", 1, 2)
    assert_close_states(fused, plain, atol=1e-5)  # the same Adam, another kernel
    assert ("fused_adam=on" in fused.describe_fast_paths()) == (expected is True)


def test_fused_adam_falls_back_with_one_warning_where_unsupported(monkeypatch, log_records) -> None:
    class NoFusedAdam(torch.optim.Adam):
        def __init__(self, params, *args, fused=None, **kwargs):
            if fused:
                raise RuntimeError("`fused=True` requires all the params to be on a supported device")
            super().__init__(params, *args, **kwargs)

    monkeypatch.setattr(torch.optim, "Adam", NoFusedAdam)
    monkeypatch.setattr(fast_paths, "_WARNED", set())
    gan_step = new_step("cdcgan", fused_adam=True)
    assert gan_step.opt_g.defaults["fused"] is None and gan_step.opt_d.defaults["fused"] is None
    warnings = [r for r in log_records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "fused Adam is not supported" in warnings[0].getMessage()
    assert "fused_adam=off (fallback" in gan_step.describe_fast_paths()
    assert all(torch.isfinite(torch.tensor(pair)).all() for pair in run(gan_step, "cdcgan", 1, 1))


def _save_and_restore(trained: GANStep, fresh: GANStep, folder: str, step: int) -> None:
    payload = ckpt.make_payload(
        trained.training_state(),
        step=step,
        config=trained.cfg,
        class_names=[str(i) for i in range(K)],
        image_shape=MODELS["cdcgan"][1],
    )
    path = ckpt.write_checkpoint_dir(os.path.join(folder, ckpt.checkpoint_name(step)), payload, trained.cfg)
    assert ckpt.restore_training_state(ckpt.load_payload(path), fresh.training_state()) == step


@pytest.mark.skipif(not _fused_supported_on_cpu(), reason="this torch has no CPU fused Adam")
@pytest.mark.parametrize(("saved_fused", "resumed_fused"), [(False, True), (True, False)])
def test_resume_moves_between_fused_and_standard_adam(tmp_path, saved_fused: bool, resumed_fused: bool) -> None:
    trained = new_step("cdcgan", fused_adam=saved_fused)
    run(trained, "cdcgan", 1, 3)
    resumed = new_step("cdcgan", seed=99, fused_adam=resumed_fused)
    _save_and_restore(trained, resumed, str(tmp_path), step=3)
    for opt in (resumed.opt_g, resumed.opt_d):
        assert all(group["fused"] == (True if resumed_fused else None) for group in opt.param_groups)
        steps = [state["step"] for state in opt.state.values()]
        assert steps and all(s.dtype == torch.float32 and s.item() == 3.0 for s in steps)
    run(trained, "cdcgan", 4, 5, data_seed=2)
    run(resumed, "cdcgan", 4, 5, data_seed=2)
    assert_close_states(resumed, trained, atol=1e-5)


def test_resume_moves_adam_moments_into_the_parameters_memory_format(tmp_path) -> None:
    trained = new_step("cdcgan", channels_last=True)
    run(trained, "cdcgan", 1, 3)
    resumed = new_step("cdcgan", seed=99)  # default: contiguous NCHW weights
    _save_and_restore(trained, resumed, str(tmp_path), step=3)
    for opt in (resumed.opt_g, resumed.opt_d):
        for p, state in opt.state.items():
            assert state["exp_avg"].stride() == p.stride() and state["exp_avg_sq"].stride() == p.stride()
    run(trained, "cdcgan", 4, 5, data_seed=2)
    run(resumed, "cdcgan", 4, 5, data_seed=2)
    assert_close_states(resumed, trained, atol=5e-5)


# --- the one log line ------------------------------------------------------------------------------------


def test_build_logs_one_line_naming_the_fast_paths(log_records) -> None:
    torch.manual_seed(0)
    cfg = make_config("cdcgan", channels_last=True, precision="bf16")
    build_gan_step(cfg, MODELS["cdcgan"][1], K, torch.device("cpu"))
    lines = [r.getMessage() for r in log_records if "fast paths" in r.getMessage()]
    assert lines == [
        "train step fast paths on cpu: channels_last=on precision=bf16 tf32=off fused_adam=off compile=off"
    ]
    build_gan_step(cfg, MODELS["cdcgan"][1], K, torch.device("cpu"), announce=False)
    assert len([r for r in log_records if "fast paths" in r.getMessage()]) == 1


# --- torch.compile (slow: minutes of compilation on a CPU) -----------------------------------------------


@pytest.mark.slow
def test_compile_trains_like_eager_and_checkpoints_the_bare_modules() -> None:
    compiled, eager = new_step("cdcgan", compile=True), new_step("cdcgan")
    assert compiled.G_fwd is not compiled.G and compiled.D_fwd is not compiled.D
    assert all(torch.isfinite(torch.tensor(pair)).all() for pair in run(compiled, "cdcgan", 1, 2))
    run(eager, "cdcgan", 1, 2)
    assert_close_states(compiled, eager, atol=5e-5)
    assert not any("_orig_mod" in key for key in compiled.training_state().generator.state_dict())
