"""InfoGAN latent codes (``model.codes``): config, networks, the info loss in the real train step, counter-based
sampling with ``--code`` on a real Ray fleet, and the report's code grids."""

from __future__ import annotations

import io
import json
import os
from types import SimpleNamespace

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from synthgen.checkpoint import load_generator
from synthgen.cli import main as cli_main
from synthgen.config import ExperimentConfig, ModelConfig, from_dict, load_config
from synthgen.draws import codes_for, labels_for, latents_for
from synthgen.errors import ConfigError
from synthgen.evaluate.report import _codes_section, code_grid
from synthgen.evaluate.sources import generate_with
from synthgen.models import build_models
from synthgen.models.codes import code_dim, encode_codes, info_loss
from synthgen.models.latent import images_from_z, latent_space
from synthgen.pixels import to_uint8
from synthgen.sample.config import SampleConfig, parse_code_values
from synthgen.sample.plan import resolve_fixed_codes
from synthgen.sample.prior import prior_codes, prior_images
from synthgen.sample.run import run_sample
from synthgen.train.step import build_gan_step
from synthgen.train.untrained import write_random_checkpoint

CODES = [{"name": "thickness", "kind": "continuous"}, {"name": "style", "kind": "categorical", "size": 4}]
CDCGAN = {"name": "cdcgan", "z_dim": 8, "arch": {"g_channels": 8, "d_channels": 8}}
STYLEGAN = {"name": "stylegan", "z_dim": 8, "arch": {"channel_base": 64, "channel_max": 16, "w_dim": 32}}
SHAPES = {"cdcgan": (1, 28, 28), "stylegan": (1, 32, 32)}
K = 3  # classes


def _models(model: dict, codes=CODES, seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(seed)
    g, d = build_models(from_dict(ModelConfig, {**model, "codes": codes}), SHAPES[model["name"]], K)
    return g.eval(), d.eval()


# ---- config -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model, codes, words",
    [
        ({"name": "mlp"}, [{"name": "t"}], ["model.codes", "mlp", "cdcgan", "stylegan"]),
        ({"name": "dcgan"}, [{"name": "t"}], ["model.codes", "dcgan", "model.codes=[]"]),
        ({}, [{"name": "style", "kind": "categorical"}], ["model.codes[0].size", ">= 2"]),
        ({}, [{"name": "t", "size": 3}], ["model.codes[0].size", "continuous", "drop size"]),
        ({}, [{"name": "t", "kind": "gaussian"}], ["model.codes[0].kind", "categorical"]),
        ({}, [{"name": "a=b"}], ["model.codes[0].name", "letters"]),
        ({}, [{"name": "t"}, {"name": "t"}], ["model.codes[1].name", "twice"]),
        ({}, [{"name": "t", "width": 2}], ["unknown key", "width"]),
    ],
)
def test_bad_codes_are_refused_naming_the_key_and_the_fix(model, codes, words):
    with pytest.raises(ConfigError) as err:
        from_dict(ExperimentConfig, {"model": {**model, "codes": codes}})
    assert all(w in str(err.value) for w in words), str(err.value)


def test_codes_load_from_yaml_and_overrides_and_info_weight_is_checked(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "model:\n  codes: [{name: thickness, kind: continuous}, {name: style, kind: categorical, size: 4}]\n"
    )
    cfg = load_config(ExperimentConfig, path)
    assert [(c.name, c.kind, c.size) for c in cfg.model.codes] == [
        ("thickness", "continuous", 0),
        ("style", "categorical", 4),
    ]
    assert load_config(ExperimentConfig, None, ["model.codes=[{name: t}]"]).model.codes[0].kind == "continuous"
    assert load_config(ExperimentConfig).model.codes == () and load_config(ExperimentConfig).model.info_weight == 1.0
    with pytest.raises(ConfigError, match="model.info_weight"):
        load_config(ExperimentConfig, None, ["model.info_weight=-1"])


# ---- networks -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [CDCGAN, STYLEGAN])
@torch.no_grad()
def test_generator_takes_codes_and_each_code_changes_the_image(model):
    g, d = _models(model)
    assert g.z_dim == 8 and g.code_dim == 5 and code_dim(g.codes) == 5
    n, shape = 4, SHAPES[model["name"]]
    z, y = torch.randn(n, 8), torch.tensor([0, 1, 2, 0])
    codes = torch.tensor([[0.0, 1.0]] * n)  # thickness 0, style 1
    assert g(z, y, codes).shape == (n, *shape)
    for col, value in [(0, 0.9), (1, 3.0)]:  # change one code, z / y / the other code fixed
        other = codes.clone()
        other[:, col] = value
        assert (g(z, y, other) - g(z, y, codes)).abs().max() > 1e-4
    assert torch.equal(g(z, y, codes), g(z, y, codes))  # eval mode: a pure function
    assert g(z, y).shape == (n, *shape)  # None = the codes' prior mean
    logits, q = d(g(z, y, codes), y, with_codes=True)
    assert logits.shape == (n,) and q.shape == (n, 5)
    assert torch.equal(d(g(z, y, codes), y), logits)


def test_encoding_and_info_loss_values():
    specs = from_dict(ModelConfig, {"codes": CODES}).codes
    values = torch.tensor([[0.5, 2.0], [-1.0, 0.0]])
    enc = encode_codes(specs, values, 2, values)
    assert torch.equal(enc, torch.tensor([[0.5, 0, 0, 1, 0], [-1.0, 1, 0, 0, 0]]))
    assert torch.allclose(encode_codes(specs, None, 1, values), torch.tensor([[0.0, 0.25, 0.25, 0.25, 0.25]]))
    perfect = torch.tensor([[0.5, -9, -9, 9, -9], [-1.0, 9, -9, -9, -9]])
    assert float(info_loss(specs, perfect, values)) < 1e-6
    uniform = torch.zeros(2, 5)
    expect = np.log(4) + 0.5 * (0.25 + 1.0) / 2
    assert abs(float(info_loss(specs, uniform, values)) - expect) < 1e-6


@pytest.mark.parametrize("model", [CDCGAN, STYLEGAN])
def test_codes_off_is_todays_model(model):
    """Without codes: no Q head, the input layer as before, and G(z, y) the same call through every path."""
    g, d = _models(model, codes=[])
    g2, d2 = _models(model, codes=[])
    assert g.code_dim == 0 and not hasattr(d, "q_head") and not any("q_head" in k for k in d.state_dict())
    for a, b in [(g, g2), (d, d2)]:
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    first = g.fc.weight if model["name"] == "cdcgan" else g.mapping.fcs[0].weight
    assert first.shape[1] == 8 + 32  # z_dim + the class embedding (32 in both configs): no code columns
    ids, y = np.arange(5, 12), torch.arange(7) % K
    with torch.no_grad():
        direct = g(torch.from_numpy(latents_for(ids, 3, 8)), y)
        assert prior_codes(g, ids, 3) is None
        assert torch.equal(prior_images(g, ids, y, 3), direct)  # the one sampling path, unchanged
        assert torch.equal(
            images_from_z(latent_space(g), torch.from_numpy(latents_for(ids, 3, 8)), y, 0.7),
            prior_images(g, ids, y, 3, truncation=0.7),
        )


def test_info_loss_decreases_in_the_real_train_step():
    torch.manual_seed(0)
    cfg = from_dict(
        ExperimentConfig,
        {"model": {**CDCGAN, "codes": CODES, "ema_start": 0}, "train": {"batch_size": 32, "lr_g": 2e-3, "lr_d": 2e-3}},
    )
    step = build_gan_step(cfg, (1, 28, 28), K, torch.device("cpu"), announce=False)
    real, y = torch.rand(32, 1, 28, 28) * 2 - 1, torch.randint(K, (32,))
    infos = []
    for i in range(80):
        step(real, y, i)
        infos.append(float(step.last_info_loss))
    first, last = np.mean(infos[:10]), np.mean(infos[-10:])
    assert first > 1.2  # ~ log(4) + 0.5 * E[c^2] = 1.39 + 0.17 at the start
    assert last < 0.6 * first, (first, last)
    assert all(p.grad is not None for p in step.D.parameters())  # Q and D all trained in the D step


# ---- sampling ---------------------------------------------------------------------------------------


def test_codes_are_counter_based_and_fixing_one_leaves_the_others():
    sizes = [0, 4]
    a = codes_for(np.array([3, 7, 3]), seed=5, sizes=sizes)
    assert np.array_equal(a[0], a[2]) and a.dtype == np.float32
    assert np.array_equal(a[1:2], codes_for(np.array([7]), 5, sizes))
    many = codes_for(np.arange(2000), 5, sizes)
    assert many[:, 0].min() >= -1 and many[:, 0].max() <= 1 and abs(many[:, 0].mean()) < 0.05
    assert set(np.unique(many[:, 1])) == {0.0, 1.0, 2.0, 3.0}
    assert not np.array_equal(codes_for(np.arange(10), 6, sizes), codes_for(np.arange(10), 5, sizes))
    g, _ = _models(CDCGAN)
    fixed = prior_codes(g, np.arange(10), 5, fixed_codes={"style": 2}).numpy()
    assert np.all(fixed[:, 1] == 2) and np.array_equal(fixed[:, 0], codes_for(np.arange(10), 5, sizes)[:, 0])


def test_code_values_are_validated_against_the_model():
    exp = from_dict(ExperimentConfig, {"model": {**CDCGAN, "codes": CODES}})
    assert resolve_fixed_codes(["style=2", "thickness=-0.5"], exp) == {"thickness": -0.5, "style": 2.0}
    for texts, words in [
        (["colour=1"], ["colour", "thickness", "style"]),
        (["style=4"], ["[0, 4)"]),
        (["style=1.5"], ["integer"]),
        (["thickness=1.5"], ["[-1, 1]"]),
    ]:
        with pytest.raises(ConfigError) as err:
            resolve_fixed_codes(texts, exp)
        assert all(w in str(err.value) for w in words), str(err.value)
    for texts in (["style"], ["style=x"], ["style=1", "style=2"]):
        with pytest.raises(ConfigError, match="--code"):
            parse_code_values(texts)
    with pytest.raises(ConfigError, match="no code"):
        resolve_fixed_codes(["style=1"], from_dict(ExperimentConfig, {"model": CDCGAN}))


@pytest.fixture(scope="module")
def code_checkpoint(tmp_path_factory) -> str:
    cfg = from_dict(ExperimentConfig, {"model": {**CDCGAN, "codes": CODES}})
    run = write_random_checkpoint(str(tmp_path_factory.mktemp("run")), cfg)
    return run


def test_dry_run_prints_the_fixed_code_and_refuses_a_bad_one(code_checkpoint, tmp_path, capsys):
    base = ["sample", "--checkpoint", code_checkpoint, "--out", str(tmp_path / "o"), "--num-samples", "10"]
    assert cli_main([*base, "--code", "style=3", "--code", "thickness=0.25", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "codes fixed for every sample: {'thickness': 0.25, 'style': 3.0}" in out
    assert cli_main([*base, "--code", "style=7", "--dry-run"]) == 2
    assert "[0, 4)" in capsys.readouterr().err


def _pngs(out: str) -> list[bytes]:
    table = pq.read_table(os.path.join(out, "parquet"))
    return table.column("image").combine_chunks().field("bytes").to_pylist()


@pytest.mark.ray
def test_fleet_writes_the_code_and_reproduces_bytes(ray_cluster, code_checkpoint, tmp_path):
    def run(name: str, *codes: str):
        cfg = SampleConfig(
            checkpoint=code_checkpoint,
            out=str(tmp_path / name),
            num_samples=70,
            images_per_shard=64,
            num_actors=1,
            batch_size=64,
            progress=False,
            codes=codes,
        )
        return run_sample(cfg).manifest

    a, b, c = run("a", "style=1"), run("b", "style=2"), run("c", "style=1")
    assert a["plan"]["codes"] == {"style": 1.0} and a["codes"]["fixed"] == {"style": 1.0}
    assert [x["name"] for x in a["codes"]["model"]] == ["thickness", "style"]
    assert a["plan_digest"] != b["plan_digest"] and a["plan_digest"] == c["plan_digest"]
    assert _pngs(str(tmp_path / "a")) == _pngs(str(tmp_path / "c"))  # same --code: same bytes
    assert _pngs(str(tmp_path / "a")) != _pngs(str(tmp_path / "b"))
    with open(tmp_path / "a" / "plan.json") as fh:
        assert json.load(fh)["plan"]["codes"] == {"style": 1.0}
    # the fleet's pixels are those of the one prior path (first rows)
    g, _ = load_generator(code_checkpoint, use_ema=True)
    ids = np.arange(5)
    labels = torch.from_numpy(labels_for(ids, a["plan"]["class_counts"], 0))
    with torch.inference_mode():
        want = prior_images(g.eval(), ids, labels, 0, fixed_codes={"style": 1.0})
    got = np.stack([np.asarray(Image.open(io.BytesIO(p))) for p in _pngs(str(tmp_path / "a"))[:5]])
    assert np.array_equal(got, to_uint8(want).numpy()[:, 0])


# ---- report -----------------------------------------------------------------------------------------


def test_report_has_one_grid_per_code():
    g, _ = _models(CDCGAN)
    values, grid = code_grid(g, 1, seed=0, num_classes=K, rows=3)
    assert values == [0.0, 1.0, 2.0, 3.0] and grid.shape == (3, 4, 1, 28, 28) and grid.dtype == np.uint8
    assert not np.array_equal(grid[:, 0], grid[:, 3])  # the code moves the image
    values, grid = code_grid(g, 0, seed=0, num_classes=K, rows=2)
    assert len(values) == 7 and values[0] == -1.0 and values[-1] == 1.0 and grid.shape[:2] == (2, 7)
    imgs, _ = generate_with(g, K, 3, seed=0)  # row r is evaluate's sample r apart from the swept code
    assert imgs.shape == (3, 1, 28, 28)
    source = SimpleNamespace(kind="checkpoint", generator=g, seed=0, class_names=("a", "b", "c"))
    html = _codes_section(source)
    assert "InfoGAN codes" in html and "data-code='thickness'" in html and "data-code='style'" in html
    assert html.count("<img") == 2 * 8  # CODE_GRID_ROWS rows per code
    plain, _ = _models(CDCGAN, codes=[])
    assert _codes_section(SimpleNamespace(kind="checkpoint", generator=plain, seed=0, class_names=("a",))) == ""
