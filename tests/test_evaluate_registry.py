"""The metric registry: every registered metric describes itself, runs, and renders its own report lines;
a metric registered from outside the package shows up everywhere without touching another file; KID
tells identical sets from shifted ones.

Fast: a tiny three-class imagefolder in tmp_path and a stand-in judge whose features are block means.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

from synthgen.config import DataConfig, ExperimentConfig, from_dict
from synthgen.data import ImageData, load_images
from synthgen.errors import ConfigError
from synthgen.evaluate import metrics as registry
from synthgen.evaluate.config import EvalConfig
from synthgen.evaluate.context import EvalContext, Metric, MetricOutput, ReportLine
from synthgen.evaluate.report import format_table, summary_rows
from synthgen.evaluate.run import check_classes
from synthgen.evaluate.sources import Source
from synthgen.judge.config import JudgeConfig

CLASSES = ("band0", "band1", "band2")  # imagefolder sorts class folders by name: keep that order


def _pattern(label: int, rng: np.random.Generator) -> np.ndarray:
    """A noisy 28x28 uint8 image with a bright band in third ``label`` of the rows."""
    img = rng.integers(0, 60, (28, 28))
    img[label * 9 : label * 9 + 9, :] += 160
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def data_cfg(tmp_path_factory) -> DataConfig:
    root = tmp_path_factory.mktemp("bands")
    rng = np.random.default_rng(0)
    for split, per_class in (("train", 100), ("test", 40)):
        for label, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(_pattern(label, rng)).save(root / split / name / f"{i:03d}.png")
    return DataConfig(source="imagefolder", root=str(root))


class BlockJudge:
    """Stands in for synthgen.judge.cache.Judge: features are 7x7 block means, the label is the brightest band."""

    key, test_accuracy, real = "block-judge", 1.0, None

    def __init__(self, cfg: JudgeConfig) -> None:
        self.meta = {"data": {"num_train": 300}}
        self.cfg = cfg

    def features(self, images: np.ndarray) -> np.ndarray:
        x = images[:, 0].astype(np.float32) / 255.0  # [N, 28, 28]
        return x.reshape(len(x), 4, 7, 4, 7).mean(axis=(2, 4)).reshape(len(x), 16)  # [N, 16]

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        bands = images[:, 0, :27].astype(np.float32).reshape(len(images), 3, 9 * 28).mean(axis=2)  # [N, 3]
        return np.eye(3, dtype=np.float32)[bands.argmax(axis=1)]


def context(data_cfg: DataConfig, tmp_path, generated: ImageData | None = None, **cfg_kw) -> EvalContext:
    train, test = load_images(data_cfg, "train"), load_images(data_cfg, "test")
    judge_cfg = JudgeConfig(epochs=1, batch_size=32, width=4)
    base = dict(
        checkpoint="in-memory",
        data=data_cfg,
        judge=judge_cfg,
        num_samples=60,
        kid_subsets=20,
        kid_subset_size=40,
        cas=dataclasses.replace(EvalConfig().cas, num_train=60, epochs=1, batch_size=32),
    )
    cfg = EvalConfig(**{**base, **cfg_kw})
    gen = generated if generated is not None else test
    source = Source(
        kind="shards",
        path="in-memory",
        class_names=CLASSES,
        image_shape=(1, 28, 28),
        data_cfg=data_cfg,
        identity={"kind": "test"},
        _cache=gen,
    )
    return EvalContext(
        cfg=cfg,
        source=source,
        judge=BlockJudge(judge_cfg),
        real_train=train,
        real_test=test,
        out_dir=str(tmp_path),
        progress=False,
    )


def stored(name: str, out: MetricOutput) -> dict:
    """The row as metrics.jsonl keeps it (a JSON round trip)."""
    return json.loads(json.dumps({"metric": name, "results": out.results, "settings": out.settings}))


def test_every_registered_metric_describes_itself_runs_and_renders_its_rows(data_cfg, tmp_path):
    assert set(registry.ALL_METRICS) >= {"fd", "kid", "pr", "dc", "label_acc", "cas", "uplift"}
    assert registry.ALL_METRICS[0] == "fd" and registry.ALL_METRICS[-1] == "uplift"  # cheap first, slowest last
    uplift = {
        "generator": "evaluated",
        "pool": "prior",
        "seeds": 1,
        "steps": 3,
        "num_synthetic": 30,
        "fractions": (0.1,),
        "batch_size": 16,
    }
    ctx = context(data_cfg, tmp_path, uplift=from_dict(type(EvalConfig().uplift), uplift))
    for name in registry.ALL_METRICS:
        metric = registry.get_metric(name)
        assert metric.name == name and metric.description.strip() and "\n" not in metric.description
        if metric.measures != "generator":  # needs a translator / upscaler: test_evaluate_transfer / _upscale run it
            continue
        row = stored(name, metric.compute(ctx))
        lines = summary_rows([row])
        assert lines and all(isinstance(line, ReportLine) and line.value for line in lines), name
        table = format_table([row])
        for line in lines:
            assert line.metric in table and line.value in table
        for title, values in metric.per_class(row["results"]):
            assert title and set(values) == set(CLASSES), name
    assert summary_rows([{"metric": "no-such-metric", "results": {}}]) == []  # an unknown metric is skipped
    assert summary_rows([{"metric": "fd", "results": {"fd": 1.0}}]) == []  # so is a row of another version


def test_kid_is_near_zero_for_identical_sets_and_clearly_positive_for_a_shift(data_cfg, tmp_path):
    same = registry.get_metric("kid").compute(context(data_cfg, tmp_path, num_samples=120)).results  # = real test
    test = load_images(data_cfg, "test")
    brighter = ImageData(
        "shifted", np.clip(test.images.astype(np.int16) + 40, 0, 255).astype(np.uint8), test.labels, test.class_names
    )
    shifted = (
        registry.get_metric("kid").compute(context(data_cfg, tmp_path, generated=brighter, num_samples=120)).results
    )
    assert abs(same["kid_mean"]) < 2 * same["kid_std"]  # zero within its own subset noise
    assert shifted["kid_mean"] > 10 * max(shifted["kid_std"], abs(shifted["floor_mean"]), abs(same["kid_mean"]))
    assert same["floor_mean"] == pytest.approx(shifted["floor_mean"])  # the anchor does not see the generator


def _mean_pixel(ctx: EvalContext) -> MetricOutput:
    gen = ctx.generated()
    per_class = {n: float(gen.images[gen.labels == c].mean()) for c, n in enumerate(ctx.source.class_names)}
    return MetricOutput(
        results={"mean": float(gen.images.mean()), "per_class": per_class}, counts={"generated": len(gen)}
    )


DUMMY = Metric(
    name="mean_pixel",
    description="mean pixel value of the generated images (a test metric)",
    order=55,
    compute=_mean_pixel,
    summary=lambda r, s: [ReportLine("mean pixel (test metric)", f"{r['mean']:.3f}", "-", "registered by a test")],
    per_class=lambda r: [("mean pixel", r["per_class"])],
)


@pytest.fixture
def dummy_metric():
    registry.register_metric(DUMMY)
    yield DUMMY
    registry.METRICS.pop(DUMMY.name)


def test_a_metric_registered_from_outside_shows_up_everywhere(dummy_metric, data_cfg, tmp_path):
    from synthgen.evaluate.run import evaluate
    from synthgen.train.untrained import write_random_checkpoint

    names = registry.ALL_METRICS
    assert names.index("label_acc") < names.index("mean_pixel") < names.index("cas")  # placed by its order
    assert EvalConfig().metrics == names  # the default list is the registry's
    assert "mean_pixel" in registry.describe_metrics() and DUMMY.description in registry.describe_metrics()
    experiment = from_dict(ExperimentConfig, {"data": dataclasses.asdict(data_cfg)})
    ckpt = write_random_checkpoint(str(tmp_path / "run"), experiment, class_names=CLASSES)
    cfg = EvalConfig(
        checkpoint=ckpt,
        out=str(tmp_path / "eval"),
        metrics=("label_acc", "mean_pixel"),
        num_samples=30,
        judge=JudgeConfig(epochs=1, batch_size=32, width=4, cache_dir=str(tmp_path / "judges")),
        report=dataclasses.replace(EvalConfig().report, nearest_queries=2, nearest_k=2),
    )
    rows = evaluate(cfg, progress=False)
    assert [r["metric"] for r in rows] == ["label_acc", "mean_pixel"]
    from synthgen.evaluate.sources import generate_images

    assert rows[1]["results"]["mean"] == pytest.approx(float(generate_images(ckpt, 30).images.mean()))
    lines = [json.loads(line) for line in open(tmp_path / "eval" / "metrics.jsonl")]
    assert [r["metric"] for r in lines] == ["label_acc", "mean_pixel"]
    assert f"{rows[1]['results']['mean']:.3f}" in format_table(rows)
    page = open(tmp_path / "eval" / "report.html", encoding="utf-8").read()
    assert "mean pixel (test metric)" in page and "<th>mean pixel</th>" in page and "<th>label acc</th>" in page
    registry.METRICS.pop("mean_pixel")
    try:  # once unregistered, the name is refused again
        with pytest.raises(ConfigError, match="mean_pixel"):
            EvalConfig(checkpoint=ckpt, metrics=("mean_pixel",)).validate()
    finally:
        registry.register_metric(DUMMY)


def test_registering_a_name_twice_is_refused(dummy_metric):
    with pytest.raises(ConfigError, match="registered twice"):
        registry.register_metric(DUMMY)
    with pytest.raises(ConfigError, match="not registered"):
        registry.get_metric("fid")


@pytest.mark.parametrize(
    "names, by_index, ok",
    [
        (("a", "b"), False, True),
        (("0-a", "1-b"), False, False),  # another data set's classes
        (("0-a", "1-b"), True, True),  # a translation into B, whose folders name the same classes their own way
        (("0-a", "1-b", "2-c"), True, False),  # by index, but B has another number of classes
    ],
)
def test_generated_classes_must_be_the_real_ones_by_name_or_for_translations_by_index(names, by_index, ok):
    source = Source("shards", "x", ("a", "b"), (1, 8, 8), DataConfig(), {}, classes_by_index=by_index)
    if ok:
        check_classes(source, names)
    else:
        with pytest.raises(ConfigError, match="differ from the real data's"):
            check_classes(source, names)
