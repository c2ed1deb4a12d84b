"""Networks: the G/D contract for every registered model, conditioning, gradients, SN, errors, rules."""

from __future__ import annotations

import dataclasses
import io

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from synthgen.config import ModelConfig
from synthgen.errors import ConfigError
from synthgen.models import MODELS, build_models, get_model_spec, register_model
from synthgen.models.blocks import level_sides, plan_resolution, width

NUM_CLASSES = 10
MODEL_NAMES = sorted(n for n, s in MODELS.items() if not s.translation)  # noise + class -> image (this contract)


def _build(name: str, shape: tuple[int, int, int], **kw) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    if name == "stylegan" and shape[1] == 28:  # stylegan needs a power of two: the 28 px data padded to 32
        shape = (shape[0], 32, 32)
    return build_models(ModelConfig(name=name, **kw), shape, NUM_CLASSES)


def test_registry_holds_every_model() -> None:
    assert MODEL_NAMES == ["cdcgan", "dcgan", "mlp", "stylegan"]
    assert {n: (s.translation, s.paired) for n, s in MODELS.items() if s.translation} == {
        "cyclegan": (True, False),
        "pix2pix": (True, True),
        "pixelda": (True, False),
        "srgan": (True, True),
    }
    assert get_model_spec("stylegan").conditional is True
    assert get_model_spec("cdcgan").conditional is True
    assert get_model_spec("dcgan").conditional is False
    assert get_model_spec("mlp").conditional is False


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("size", [28, 32])
@pytest.mark.parametrize("channels", [1, 3])
def test_output_shapes_and_range(name: str, size: int, channels: int) -> None:
    G, D = _build(name, (channels, size, size))
    z = torch.randn(3, G.z_dim)
    labels = torch.tensor([0, 4, 9])
    x = G(z, labels)
    size = G.image_shape[1]
    assert x.shape == (3, channels, size, size)
    assert x.dtype == torch.float32
    assert x.min() >= -1.0 and x.max() <= 1.0
    logits = D(x, labels)
    assert logits.shape == (3,)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_generator_exposes_contract_attributes(name: str) -> None:
    G, D = _build(name, (1, 28, 28), z_dim=77)
    spec = get_model_spec(name)
    assert G.z_dim == 77
    assert G.num_classes == NUM_CLASSES and D.num_classes == NUM_CLASSES
    assert G.conditional is spec.conditional and D.conditional is spec.conditional


def test_conditional_generator_depends_on_label() -> None:
    G, _ = _build("cdcgan", (1, 28, 28))
    G.eval()  # running-stat BN: each sample depends on its own (z, label) only
    z = torch.randn(1, G.z_dim).repeat(NUM_CLASSES, 1)  # the same z for every class
    with torch.no_grad():
        x = G(z, torch.arange(NUM_CLASSES))  # [10, 1, 28, 28]
    diffs = (x[:, None] - x[None]).abs().flatten(2).amax(-1)  # [10, 10] max pixel difference
    off_diag = diffs[~torch.eye(NUM_CLASSES, dtype=torch.bool)]
    assert off_diag.min() > 1e-4


def test_conditional_gain_changes_output_per_class() -> None:
    # the per-class BN gain/bias (zero at init) must reach the image: perturb one class's rows only
    G, _ = _build("cdcgan", (1, 28, 28))
    G.eval()
    z = torch.randn(2, G.z_dim)
    labels = torch.tensor([3, 5])
    with torch.no_grad():
        before = G(z, labels)
        G.ups[0].norm.bias.weight[3].add_(0.5)
        after = G(z, labels)
    assert (after[0] - before[0]).abs().max() > 1e-4  # class 3 changed
    assert torch.equal(after[1], before[1])  # class 5 untouched


@pytest.mark.parametrize("name", ["dcgan", "mlp"])
def test_unconditional_models_ignore_labels(name: str) -> None:
    G, D = _build(name, (1, 28, 28))
    G.eval(), D.eval()
    z = torch.randn(4, G.z_dim)
    with torch.no_grad():
        a, b = G(z, torch.zeros(4, dtype=torch.long)), G(z, torch.full((4,), 7))
        assert torch.equal(a, b)
        assert torch.equal(G(z, None), a)
        assert torch.equal(D(a, torch.zeros(4, dtype=torch.long)), D(a, torch.full((4,), 7)))


def test_conditional_model_requires_labels() -> None:
    G, D = _build("cdcgan", (1, 28, 28))
    with pytest.raises(ValueError, match="labels"):
        G(torch.randn(2, G.z_dim), None)
    with pytest.raises(ValueError, match="shape"):
        D(torch.zeros(2, 1, 28, 28), torch.zeros(3, dtype=torch.long))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_gradients_reach_every_parameter(name: str) -> None:
    G, D = _build(name, (1, 28, 28))
    labels = torch.arange(NUM_CLASSES)  # every class row of every embedding gets used
    out = D(G(torch.randn(NUM_CLASSES, G.z_dim), labels), labels)
    out.mean().backward()
    for net in (G, D):
        for pname, p in net.named_parameters():
            assert p.grad is not None, f"{name}: {pname} got no gradient"
            assert torch.isfinite(p.grad).all(), f"{name}: {pname} has a non-finite gradient"
            assert p.grad.abs().sum() > 0, f"{name}: {pname} has an all-zero gradient"


def test_cdcgan_discriminator_is_spectrally_normalised_everywhere() -> None:
    _, D = _build("cdcgan", (1, 28, 28))
    weighted = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]
    assert len(weighted) == 5  # three convs, the linear head, the projection embedding
    for m in weighted:
        assert parametrize.is_parametrized(m, "weight"), f"{m} lacks spectral norm"
        kinds = [type(p).__name__ for p in m.parametrizations.weight]
        assert kinds == ["_SpectralNorm"]
    # training-mode forwards run power iteration: each effective weight's top singular value -> ~1
    D.train()
    x, y = torch.randn(4, 1, 28, 28), torch.arange(4)
    with torch.no_grad():
        for _ in range(10):
            D(x, y)
        for m in weighted:
            sigma = torch.linalg.matrix_norm(m.weight.flatten(1), ord=2)
            assert abs(sigma.item() - 1.0) < 0.05, f"{m}: sigma {sigma.item():.3f}"


def test_dcgan_generator_has_no_spectral_norm_but_batchnorm() -> None:
    G, _ = _build("dcgan", (1, 28, 28))
    assert any(isinstance(m, nn.BatchNorm2d) for m in G.modules())
    assert not any(parametrize.is_parametrized(m) for m in G.modules())


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_state_dict_round_trip_through_weights_only_load(name: str) -> None:
    G, D = _build(name, (1, 28, 28))
    G2, D2 = _build(name, (1, 28, 28))
    with torch.no_grad():
        for p in list(G2.parameters()) + list(D2.parameters()):
            p.add_(1.0)  # make sure the copy really comes from the file
    buf = io.BytesIO()
    torch.save({"g": G.state_dict(), "d": D.state_dict()}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    G2.load_state_dict(state["g"])
    D2.load_state_dict(state["d"])
    for net in (G, D, G2, D2):
        net.eval()
    z, y = torch.randn(5, G.z_dim), torch.arange(5)
    with torch.no_grad():
        assert torch.equal(G(z, y), G2(z, y))
        assert torch.equal(D(G(z, y), y), D2(G(z, y), y))


def test_widths_come_from_config() -> None:
    small_g, small_d = _build("cdcgan", (1, 28, 28), arch={"g_channels": 16, "d_channels": 16})
    big_g, big_d = _build("cdcgan", (1, 28, 28), arch={"g_channels": 64, "d_channels": 64})
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(big_g) > 2 * count(small_g)
    assert count(big_d) > 2 * count(small_d)
    convs = [m for m in big_d.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 128]  # width rule: base at 14 px, 2*base at 7 px
    ups = [m for m in big_g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [u.out_channels for u in ups] == [64, 16]  # base at 14 px, base/4 at full resolution


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_declares_frozen_options_with_defaults(name: str) -> None:
    options = get_model_spec(name).options
    assert dataclasses.is_dataclass(options) and options.__dataclass_params__.frozen
    defaults = options()  # every field has a default: an empty model.arch builds a working model
    assert ModelConfig(name=name).arch == dataclasses.asdict(defaults)


def test_a_new_model_brings_its_own_options_without_widening_model_config() -> None:
    @dataclasses.dataclass(frozen=True)
    class TinyOptions:
        hidden: int = 4  # the test model's only option

    @register_model("tiny-test", conditional=False, options=TinyOptions)
    def build(opts: TinyOptions, z_dim: int, shape: tuple[int, int, int], num_classes: int):
        return nn.Linear(z_dim, opts.hidden), nn.Linear(opts.hidden, 1)

    try:
        cfg = ModelConfig(name="tiny-test", z_dim=3, arch={"hidden": 9})
        g, _ = build_models(cfg, (1, 28, 28), NUM_CLASSES)
        assert (g.in_features, g.out_features) == (3, 9)
        assert ModelConfig(name="tiny-test").arch == {"hidden": 4}
        with pytest.raises(ConfigError, match=r"valid keys are: \['hidden'\]"):
            ModelConfig(name="tiny-test", arch={"g_channels": 8})
        assert "hidden" not in {f.name for f in dataclasses.fields(ModelConfig)}
    finally:
        MODELS.pop("tiny-test")


def test_options_need_defaults_for_every_field() -> None:
    @dataclasses.dataclass(frozen=True)
    class NoDefault:
        depth: int  # no default: an empty model.arch could not build this model

    with pytest.raises(ValueError, match=r"fields \['depth'\] need a default"):
        register_model("no-default-test", conditional=False, options=NoDefault)
    assert "no-default-test" not in MODELS


def test_unknown_model_name_lists_registered_names() -> None:
    with pytest.raises(ConfigError) as err:
        build_models(ModelConfig(name="stylegan9"), (1, 28, 28), NUM_CLASSES)
    for name in MODEL_NAMES:
        assert name in str(err.value)
    assert "stylegan9" in str(err.value)


@pytest.mark.parametrize("shape", [(1, 28, 32), (1, 30, 30), (2, 28, 28)])
def test_unsupported_image_shape_is_a_config_error(shape: tuple[int, int, int]) -> None:
    with pytest.raises(ConfigError, match="multiple of 4"):
        build_models(ModelConfig(), shape, NUM_CLASSES)


def test_conditional_model_needs_classes() -> None:
    with pytest.raises(ConfigError, match="num_classes"):
        build_models(ModelConfig(name="cdcgan"), (1, 28, 28), 0)


@pytest.mark.parametrize(
    "size,expected", [(4, (2, 1)), (12, (6, 1)), (28, (7, 2)), (32, (4, 3)), (48, (6, 3)), (64, (4, 4))]
)
def test_resolution_plan(size: int, expected: tuple[int, int]) -> None:
    start, num_up = plan_resolution(size)
    assert (start, num_up) == expected
    assert start * 2**num_up == size
    assert level_sides(size) == [start * 2**i for i in range(num_up + 1)]


def test_width_rule() -> None:
    assert [width(64, 28, s) for s in (7, 14, 28)] == [128, 64, 16]
    assert [width(64, 64, s) for s in (4, 8, 16, 32, 64)] == [512, 256, 128, 64, 16]
    assert width(64, 256, 4) == 512  # capped at 8 * base
    assert width(4, 28, 14) == 8  # never below 8 channels
