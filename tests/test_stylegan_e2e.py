"""``stylegan`` at 128 px RGB, end to end with the real stages: the offline RGB data set
(jobs/make_rgb_dataset.py) -> ``synthgen train`` on Ray Train -> ``synthgen sample --truncation`` (W-space
truncation) with ``--verify`` -> ``synthgen evaluate``. Small widths and a few steps: this checks that the
stages fit together at the largest size, not image quality (every size's networks: tests/test_stylegan.py)."""

from __future__ import annotations

import json
import os
import sys

import pytest

from synthgen.cli import main as cli_main
from synthgen.config import ExperimentConfig, load_config
from synthgen.sample.verify import verify_output
from tests.job_module import load_job

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = """
model: {name: stylegan, z_dim: 16, loss: bce, r1_gamma: 0.01, r1_interval: 2, ema_start: 0,
        arch: {channel_base: 256, channel_max: 16, w_dim: 32}}
train: {num_workers: 1, cpus_per_worker: 0.5, batch_size: 4, steps: 4, checkpoint_every: 4, sample_every: 4,
        log_every: 2, max_failures: 0}
run: {name: sg}
"""


def _make_rgb(out: str, size: int) -> None:
    sys.path.insert(0, os.path.join(ROOT, "jobs"))
    try:
        import make_rgb_dataset
    finally:
        sys.path.pop(0)
    assert (
        make_rgb_dataset.main(["--out", out, "--resolution", str(size), "--max-per-class", "3", "--no-progress"]) == 0
    )


def _sets(*pairs: str) -> list[str]:
    return [arg for pair in pairs for arg in ("--set", pair)]


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.parametrize("size", [128])
def test_stylegan_trains_samples_verifies_and_evaluates_rgb(size, tmp_path, ray_cluster, fashion_mnist_root):
    data, runs, out = str(tmp_path / "rgb"), str(tmp_path / "runs"), str(tmp_path / "out")
    _make_rgb(data, size)
    config = tmp_path / "stylegan.yaml"
    config.write_text(CONFIG)
    train = _sets(
        "data.source=imagefolder",
        f"data.root={data}",
        "data.channels=3",
        f"data.resolution={size}",
        f"run.storage_path={runs}",
    )
    assert cli_main(["train", "--config", str(config), *train]) == 0
    run = os.path.join(runs, "sg")
    assert os.path.isdir(os.path.join(run, "checkpoint-000004"))
    assert (
        cli_main(
            [
                "sample",
                "--checkpoint",
                run,
                "--out",
                out,
                "--num-samples",
                "30",
                "--format",
                "both",
                "--truncation",
                "0.7",
                "--verify",
                "--no-progress",
            ]
        )
        == 0
    )
    report = verify_output(out)
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    assert report.ok and manifest["total"] == 30 and manifest["image_shape"] == [3, size, size]
    evaluate = _sets(
        "judge.epochs=1",
        "judge.max_train_images=30",
        "num_samples=30",
        "report.nearest_queries=2",
        "report.nearest_k=2",
        "report.samples_per_class=2",
        f"judge.cache_dir={tmp_path / 'judges'}",
    )
    assert cli_main(["evaluate", "--checkpoint", run, "--metrics", "fd,label_acc", *evaluate]) == 0
    rows = [json.loads(line) for line in open(os.path.join(run, "eval", "metrics.jsonl"))]
    assert [r["metric"] for r in rows] == ["fd", "label_acc"]
    assert rows[0]["results"]["fd"] > 0 and 0 <= rows[1]["results"]["label_acc"] <= 1


def test_bench_cost_smoke_prints_every_model(capsys):
    bench_cost = load_job("bench_cost", "benchmarks")
    assert bench_cost.main(["--smoke-test"]) == 0
    out = capsys.readouterr().out
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    models = ["cdcgan", "stylegan", "pix2pix", "cyclegan"]  # the noise models, then the image -> image ones
    assert [(r["model"], r["size"]) for r in rows] == [(m, 32) for m in models]
    for r in rows:
        assert r["train_img_per_s"] > 0 and r["sample_img_per_s"] > 0
        assert r["train_thread_ms_per_img"] == pytest.approx(1000 / r["train_img_per_s"], rel=1e-3)
        assert r["train_cost_vs_first"] == pytest.approx(
            r["train_thread_ms_per_img"] / rows[0]["train_thread_ms_per_img"], rel=1e-3
        )
    assert "cyclegan train: one image per A input" in out


def test_bench_cost_translates_outlines_and_gray_into_rgb(tmp_path):
    bench_cost = load_job("bench_cost", "benchmarks")
    pix2pix = bench_cost.translation_config("pix2pix", 64, 8, str(tmp_path))
    cyclegan = bench_cost.translation_config("cyclegan", 64, 8, str(tmp_path))
    assert bench_cost.translation_shapes(pix2pix) == ((1, 64, 64), (3, 64, 64))  # outlines -> the RGB images
    assert bench_cost.translation_shapes(cyclegan) == ((1, 64, 64), (3, 64, 64))  # gray -> RGB
    assert pix2pix.data.pairs == "edges" and pix2pix.model.arch["class_conditional"] is True  # pix2pix_edges.yaml's
    assert pix2pix.model.arch["g_channels"] == 64  # the default width, as pix2pix_edges.yaml trains
    assert {k: cyclegan.model.arch[k] for k in ("g_channels", "g_blocks", "d_channels")} == {
        "g_channels": 32,
        "g_blocks": 4,
        "d_channels": 32,
    }  # cyclegan_rgb.yaml's
    assert pix2pix.train.batch_size == cyclegan.train.batch_size == 8
    pixelda = bench_cost.translation_config("pixelda", 64, 8, str(tmp_path))
    assert bench_cost.translation_shapes(pixelda) == ((1, 64, 64), (3, 64, 64))  # gray -> RGB
    trained = load_config(ExperimentConfig, "jobs/configs/pixelda_rgb.yaml", [])
    assert dict(pixelda.model.arch) == dict(trained.model.arch)  # the widths the study trains
