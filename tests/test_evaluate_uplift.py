"""The uplift metric trains its real+synthetic arm on the synthetic pool it is given, through the one mixing
path (synthgen.data.mix): a correctly labelled pool beats a mislabelled one, while the real-only arm of the
same subset and seed is untouched. The long-tail setting: a per-class subset, class-balanced real rows in both
arms, a pool that fills the rare classes, and the rare classes' accuracy per seed and over seeds.
Small: the three-class band images of test_evaluate_registry, a few steps."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from test_evaluate_registry import context, data_cfg  # noqa: F401  (data_cfg is a fixture)

from synthgen.data import ImageData, load_images
from synthgen.data.mix import synthetic_per_batch
from synthgen.errors import ConfigError
from synthgen.evaluate.config import EvalConfig
from synthgen.evaluate.metrics import get_metric

UPLIFT = {
    "generator": "evaluated",
    "pool": "prior",
    "seeds": 1,
    "steps": 40,
    "batch_size": 16,
    "synthetic_fraction": 0.5,
    "fractions": (0.1,),
    "num_synthetic": 300,
    "augment": False,
}


def _uplift(data_cfg, tmp_path, pool: ImageData) -> dict:
    from synthgen.config import from_dict

    ctx = context(data_cfg, tmp_path, generated=pool, uplift=from_dict(type(EvalConfig().uplift), UPLIFT))
    return get_metric("uplift").compute(ctx).results["by_fraction"]["10%"]


def test_the_mixed_arm_learns_from_the_pool_and_the_real_arm_does_not_see_it(data_cfg, tmp_path):
    train = load_images(data_cfg, "train")
    good = ImageData("pool", train.images, train.labels, train.class_names)
    wrong = ImageData("pool", train.images, (train.labels + 1) % 3, train.class_names)  # every label wrong
    a, b = _uplift(data_cfg, tmp_path, good), _uplift(data_cfg, tmp_path, wrong)
    assert a["num_real"] == b["num_real"] == 30  # 10% of 300, class-stratified
    assert a["real_only"] == b["real_only"]  # same subset, init and batches: the pool never reaches this arm
    assert a["real_plus_synthetic"]["mean"] > b["real_plus_synthetic"]["mean"] + 0.2
    assert a["uplift_points"]["mean"] > b["uplift_points"]["mean"]


def test_synthetic_share_per_batch_keeps_both_kinds():
    assert synthetic_per_batch(64, 0.25) == 16  # the uplift default: round(fraction * batch)
    assert synthetic_per_batch(64, 0.001) == 1 and synthetic_per_batch(64, 0.999) == 63  # never all one kind
    assert synthetic_per_batch(64, 0.0) == 0 and synthetic_per_batch(64, 1.0) == 64
    with pytest.raises(ConfigError, match="synthetic_fraction"):
        synthetic_per_batch(64, 1.5)


# --- the long-tail setting ---------------------------------------------------------------------------------

LONG_TAIL = {**UPLIFT, "setting": "long_tail", "class_counts": (60, 20, 6), "rare_classes": 2, "seeds": 2}


def _long_tail(data_cfg, tmp_path, pool: ImageData, **extra) -> dict:
    from synthgen.config import from_dict

    ctx = context(
        data_cfg, tmp_path, generated=pool, uplift=from_dict(type(EvalConfig().uplift), {**LONG_TAIL, **extra})
    )
    out = get_metric("uplift").compute(ctx)
    assert out.results["setting"] == "long_tail" and "by_fraction" not in out.results
    return json.loads(json.dumps(out.results))["long_tail"]  # as metrics.jsonl keeps it


def test_long_tail_reports_test_and_rare_class_accuracy_per_seed_and_over_seeds(data_cfg, tmp_path):
    train = load_images(data_cfg, "train")
    good = ImageData("pool", train.images, train.labels, train.class_names)
    # the rarest class's synthetic images labelled as the commonest: hurts the rare classes' accuracy only
    wrong = ImageData("pool", train.images, np.where(train.labels == 2, 0, train.labels), train.class_names)
    a, b = _long_tail(data_cfg, tmp_path, good), _long_tail(data_cfg, tmp_path, wrong)
    assert a["num_real"] == 86 and a["class_counts"] == [60, 20, 6]
    assert a["rare_classes"] == ["band2", "band1"]  # 6 and 20 images: the two rarest, rarest first
    for r in (a, b):
        for arm in ("real_only", "real_plus_synthetic"):
            for seed in range(2):
                pc = r["per_class"][arm][seed]
                # the test split is balanced (40 per class): its accuracy is the mean of the per-class ones
                assert np.mean(list(pc.values())) == pytest.approx(r[arm]["values"][seed])
                assert r["rare"][arm]["values"][seed] == pytest.approx((pc["band2"] + pc["band1"]) / 2)
        for block in (r, r["rare"]):
            diff = np.subtract(block["real_plus_synthetic"]["values"], block["real_only"]["values"]) * 100
            u = block["uplift_points"]
            assert u["values"] == pytest.approx(list(diff)) and u["mean"] == pytest.approx(diff.mean())
            assert u["se"] == pytest.approx(np.std(diff, ddof=1) / np.sqrt(2))
            assert u["positive"] == int((diff > 0).sum())
    assert (
        a["real_only"] == b["real_only"] and a["rare"]["real_only"] == b["rare"]["real_only"]
    )  # pool never reaches it
    assert a["rare"]["real_plus_synthetic"]["mean"] > b["rare"]["real_plus_synthetic"]["mean"] + 0.2
    # the rare mean is not the overall one: only the rare classes were hurt
    assert b["rare"]["real_plus_synthetic"]["mean"] < b["real_plus_synthetic"]["mean"] - 0.05
    assert b["rare"]["uplift_points"]["mean"] < 0 and b["rare"]["uplift_points"]["positive"] == 0
    assert a["synthetic_per_class"] == [[100, 100, 100]] * 2  # the pool as given (prior pools are not reweighted)


def test_long_tail_class_counts_that_do_not_fit_are_refused_naming_the_metric_key(data_cfg, tmp_path):
    train = load_images(data_cfg, "train")
    with pytest.raises(ConfigError, match=r"uplift.class_counts has 2 counts but the data set has 3 classes"):
        _long_tail(data_cfg, tmp_path, train, class_counts=(60, 20), rare_classes=1)
    with pytest.raises(ConfigError, match=r"uplift.class_counts\[0\]=101 asks for more 'band0' images.*at most 100"):
        _long_tail(data_cfg, tmp_path, train, class_counts=(101, 20, 6))


def test_long_tail_arms_draw_real_rows_class_balanced_and_few_labels_do_not(data_cfg, tmp_path, monkeypatch):
    import synthgen.classify.batches as batches_mod

    seen = []

    class Recording(batches_mod.MixedBatchSampler):
        def __init__(self, *args, **kwargs):
            seen.append(kwargs["class_balanced"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(batches_mod, "MixedBatchSampler", Recording)
    train = load_images(data_cfg, "train")
    _long_tail(data_cfg, tmp_path, train, seeds=1)
    assert seen == [True, True]  # both arms
    seen.clear()
    _uplift(data_cfg, tmp_path, train)
    assert seen == [False, False]


def test_class_balanced_batches_draw_every_class_equally_often():
    from synthgen.classify import ClassifierSettings, arm_batches

    names = ("a", "b", "c")
    labels = np.repeat([0, 1, 2], [90, 9, 3])
    real = ImageData("real", np.arange(102, dtype=np.uint8).reshape(102, 1, 1, 1), labels, names)  # pixel = index
    syn = ImageData("syn", np.full((20, 1, 1, 1), 255, np.uint8), np.zeros(20, np.int64), names)
    balanced = ClassifierSettings(batch_size=12, synthetic_fraction=0.25, steps=30, seed=0, class_balanced=True)
    rows = [(x.flatten().numpy(), y.numpy()) for x, y in arm_batches(real, None, balanced)]
    counts = np.bincount(np.concatenate([y for _, y in rows]), minlength=3)
    assert counts.sum() == 360 and counts.tolist() == [120, 120, 120]  # classes in shuffled passes: exact
    uses = np.bincount(np.concatenate([x for x, _ in rows]), minlength=102)  # draws of each real image
    # each class's images in shuffled passes: every image of a class drawn as often as the others, to within one
    for c in range(3):
        assert uses[labels == c].max() - uses[labels == c].min() <= 1
    assert uses[labels == 2].tolist() == [40, 40, 40]
    plain = dataclasses.replace(balanced, class_balanced=False)
    plain_labels = np.concatenate([y.numpy() for _, y in arm_batches(real, None, plain)])
    assert np.bincount(plain_labels, minlength=3)[0] > 300  # unbalanced without it: the real class mix
    mixed = list(arm_batches(real, syn, balanced))
    real_rows = np.concatenate([y.numpy()[x.flatten().numpy() != 255] for x, y in mixed])
    assert len(real_rows) == 30 * 9 and np.bincount(real_rows, minlength=3).tolist() == [90, 90, 90]
    assert all(int((x.flatten() == 255).sum()) == 3 for x, _ in mixed)  # the synthetic share is untouched


def test_class_balanced_sampling_needs_the_real_labels():
    import torch

    from synthgen.data.mix import MixedBatchSampler, MixedDataset

    class NoTargets(torch.utils.data.Dataset):
        classes = ["a"]

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return torch.zeros(1, 1, 1), 0

    with pytest.raises(ConfigError, match="class_balanced=True needs the real part's labels"):
        MixedBatchSampler(MixedDataset(NoTargets(), NoTargets()), 2, 0, class_balanced=True)


class _IndexGenerator(torch.nn.Module):
    """G(z, y): every pixel encodes z[0] (the inverted image's index when sigma = 0)."""

    z_dim = 4

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (z[:, :1] / 50.0 - 1.0).view(-1, 1, 1, 1).expand(-1, 1, 2, 2) + 0 * self.w  # [B, 1, 2, 2]


def test_uniform_class_weights_vary_a_rare_class_image_more_often(tmp_path):
    from synthgen.evaluate.uplift_pool import pool_class_counts, weighted_neighbour_images
    from synthgen.invert.inversion import Inversion, neighbour_latents
    from synthgen.pixels import to_uint8
    from synthgen.sample.around import variations_per_image

    names = ("a", "b", "c")
    labels = np.array([0, 1, 0, 0, 2, 1, 0, 0], np.int64)  # 5 of a, 2 of b, 1 of c
    assert pool_class_counts("data", labels, names, 30) is None  # the subset's own mix: every image in turn
    counts = pool_class_counts("uniform", labels, names, 30)
    assert counts == [10, 10, 10]
    (tmp_path / "w.yaml").write_text("a: 0\nb: 1\nc: 3\n")
    assert pool_class_counts(str(tmp_path / "w.yaml"), labels, names, 8) == [0, 2, 6]
    with pytest.raises(ConfigError, match=r"gives classes \['c'\] synthetic images but the real subset has no image"):
        pool_class_counts("uniform", labels[labels != 2], names, 30)
    v = variations_per_image(labels, counts, np.bincount(labels, minlength=3))  # --around's rule
    # class a: 10 over 5 images (2 each); b: 10 over 2 (5 each); c: all 10 on its one image
    assert v.tolist() == [2, 5, 2, 2, 10, 5, 2, 2]
    latents = torch.zeros(8, 4)
    latents[:, 0] = torch.arange(8) * 10.0  # image i -> latent with z[0] = 10 i
    inv = Inversion(latents=latents, labels=labels, mse=0.0, start_mse=0.0)
    ids = np.arange(8) + 100
    images, out_labels = weighted_neighbour_images(_IndexGenerator(), inv, v, ids, sigma=0.0, seed=0)
    source = np.round((images[:, 0, 0, 0].astype(np.float64) / 127.5 - 1.0 + 1.0) * 5).astype(int)  # back to i
    assert np.bincount(out_labels, minlength=3).tolist() == [10, 10, 10]
    assert np.array_equal(out_labels, labels[source])  # each image keeps its source's class
    assert np.bincount(source, minlength=8).tolist() == v.tolist()
    # with noise: sample (i, j) is z_i + sigma * eps(seed, i, j), keyed by the real-set index i as --around keys it
    noisy, _ = weighted_neighbour_images(_IndexGenerator(), inv, v, ids, sigma=1.0, seed=7)
    want = neighbour_latents(latents, np.ones(5, np.int64), np.full(5, 101), np.arange(5), 1.0, 7)  # image 1, j < 5
    got = noisy[2:7, 0, 0, 0]  # image 0's 2 variations come first, then image 1's 5
    assert got.tolist() == to_uint8((want[:, :1] / 50.0 - 1.0).view(5, 1, 1, 1)).numpy()[:, 0, 0, 0].tolist()
    assert len(set(got.tolist())) > 1  # the noise differs per variation


class _BandGenerator(torch.nn.Module):
    """A tiny conditional generator of 28x28 images (enough to invert into and vary)."""

    z_dim = 8

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(8 + 3, 28 * 28)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = torch.cat([z, torch.nn.functional.one_hot(y.long(), 3).float()], dim=1)  # [B, 11]
        return torch.tanh(self.net(h)).view(-1, 1, 28, 28)  # [B, 1, 28, 28]


@pytest.mark.parametrize(
    "weights, expect",
    [
        ("auto", [100, 100, 100]),  # long tail: uniform, the rare classes filled
        ("data", None),  # the subset's own mix: every image varied in turn
    ],
)
def test_long_tail_inversion_pool_follows_the_class_weights(data_cfg, tmp_path, weights, expect):
    from synthgen.config import from_dict

    torch.manual_seed(0)
    u = from_dict(
        type(EvalConfig().uplift),
        {**LONG_TAIL, "pool": "inversion", "inversion_steps": 2, "seeds": 1, "class_weights": weights},
    )
    ctx = context(data_cfg, tmp_path, uplift=u)
    ctx = dataclasses.replace(ctx, source=dataclasses.replace(ctx.source, generator=_BandGenerator()))
    r = get_metric("uplift").compute(ctx).results["long_tail"]
    (counts,) = r["synthetic_per_class"]
    assert sum(counts) == 300
    if expect is not None:
        assert counts == expect
    else:
        assert counts[0] > 2 * counts[1] > 4 * counts[2] > 0  # ~ 60 : 20 : 6
    assert r["inversion_mse"]["values"][0] >= 0


@pytest.mark.parametrize(
    "override, match",
    [
        ({"setting": "tail"}, "uplift.setting='tail' is invalid"),
        ({"setting": "long_tail", "class_counts": (5, 0, 2)}, "uplift.class_counts"),
        ({"setting": "long_tail", "class_counts": (5, 3, 2), "rare_classes": 3}, "uplift.rare_classes=3 is invalid"),
        ({"class_weights": "uniform", "pool": "prior"}, "uplift.class_weights='uniform' shapes the inversion pool"),
    ],
)
def test_uplift_setting_keys_are_checked(override, match):
    with pytest.raises(ConfigError, match=match):
        EvalConfig(checkpoint="x", uplift=dataclasses.replace(EvalConfig().uplift, **override)).validate()


def test_honest_long_tail_generator_trains_on_exactly_the_class_counts_subset():
    from synthgen.config import ExperimentConfig, dump_yaml
    from synthgen.evaluate.config import GAMO_FASHION_MNIST, UpliftConfig
    from synthgen.evaluate.uplift import _same_recipe, honest_config, subset_generator_config, subsets

    u = UpliftConfig(setting="long_tail")
    ((key, tag, subset),) = subsets(u, 60000, 10)
    cfg = subset_generator_config(ExperimentConfig(), tag, subset, 1, u, "/tmp/x")
    assert key == "long_tail" and cfg.run.name.startswith("uplift-longtail-seed01-")
    assert (cfg.data.class_counts, cfg.data.max_images, cfg.data.subset_seed) == (GAMO_FASHION_MNIST, 0, 1)
    with pytest.raises(ConfigError, match="must not change data.max_images / data.class_counts"):
        subset_generator_config(
            ExperimentConfig(),
            tag,
            subset,
            1,
            dataclasses.replace(u, generator_overrides=("data.class_counts=[5,5]",)),
            "/tmp/x",
        )
    # a new key at its default leaves the few-label generators' folders (and their reuse) as they were
    few = honest_config(ExperimentConfig(), 0.1, 6000, 1, UpliftConfig(), "/tmp/y")
    assert few.run.name == "uplift-10pct-seed01-5fe9eaf8", (
        "the honest generators' recipe digest moved, so every cached generator would retrain: a config key added "
        "with a default belongs in synthgen.evaluate.uplift.KEYS_ADDED_LATER"
    )
    assert few.data.class_counts == ()
    written_before = dump_yaml(few).replace("  class_counts: []\n", "")
    assert "class_counts" not in written_before and _same_recipe(written_before, few)
    assert not _same_recipe(written_before.replace("steps: 6000", "steps: 600"), few)


def test_summary_lines_show_standard_error_positive_seeds_and_the_rare_classes():
    from synthgen.evaluate.metrics.uplift import per_class, summary

    diff = {"mean": 1.5, "std": 0.5, "se": 0.35, "values": [1.0, 2.0], "positive": 2}
    arm = {"mean": 0.8, "std": 0.0, "values": [0.8, 0.8]}
    pc = [{"a": 0.9, "b": 0.5}, {"a": 0.7, "b": 0.3}]
    lt = {
        "num_real": 86,
        "class_counts": [80, 6],
        "real_only": arm,
        "real_plus_synthetic": arm,
        "uplift_points": diff,
        "rare_classes": ["b"],
        "rare": {"real_only": arm, "real_plus_synthetic": arm, "uplift_points": diff},
        "per_class": {"real_only": pc, "real_plus_synthetic": pc[::-1]},
    }
    lines = summary({"honest": True, "setting": "long_tail", "long_tail": lt}, {})
    assert [line.metric for line in lines] == ["uplift long tail (86 img, 80:6)", "uplift long tail, 1 rarest (b)"]
    assert lines[0].note == "+1.50 ± 0.50 pts over 2 seeds, standard error 0.35, 2 of 2 > 0"
    assert "class-balanced" in lines[1].anchor
    assert per_class({"long_tail": lt}) == [
        ("uplift real only", {"a": pytest.approx(0.8), "b": pytest.approx(0.4)}),
        ("uplift real+syn", {"a": pytest.approx(0.8), "b": pytest.approx(0.4)}),
    ]
    old_row = {
        "by_fraction": {
            "1%": {
                "num_real": 600,
                "real_only": arm,
                "real_plus_synthetic": arm,
                "uplift_points": {"mean": 0.27, "std": 0.28, "values": [0.4, -0.1, 0.5]},
            }
        }
    }
    assert (
        summary(old_row, {})[0].note
        == "+0.27 ± 0.28 pts over 3 seeds (not honest: evaluated generator, not one per subset)"
    )


# --- jobs/train_classifier.py: the same subset, class-balanced real rows, rare accuracy in its JSON -------------


def _classifier_job():
    from job_module import load_job

    return load_job("train_classifier")


TAIL = [50, 40, 30, 20, 15, 10, 8, 6, 4, 2]  # Fashion-MNIST classes in order: ... Sneaker 6, Bag 4, Ankle boot 2


def test_classifier_job_long_tail_json_has_the_rare_accuracy(tmp_path, fashion_mnist_root, capsys):
    tc = _classifier_job()
    out = tmp_path / "r.json"
    common = [
        f"data.root={fashion_mnist_root}",
        "data.subset_seed=1",
        "class_balanced=true",
        "train_on=real",
        "steps=4",
        "batch_size=20",
        "width=4",
        "num_threads=1",
    ]
    sets = [*common, "data.max_images=0", f"data.class_counts={TAIL}", f"out={out}"]  # the smoke config has max_images
    assert (
        tc.main(["--config", "jobs/configs/train_classifier_smoke.yaml", *[a for s in sets for a in ("--set", s)]]) == 0
    )
    r = json.loads(out.read_text())
    assert r["real_class_counts"] == TAIL and r["num_real"] == sum(TAIL) and r["class_balanced"] is True
    assert r["rare_classes"] == ["Ankle boot", "Bag", "Sneaker"]
    pc = r["per_class_accuracy"]
    assert r["rare_accuracy"] == pytest.approx((pc["Ankle boot"] + pc["Bag"] + pc["Sneaker"]) / 3)
    assert np.mean(list(pc.values())) == pytest.approx(r["accuracy"])  # balanced test split: 1000 per class
    assert f"rare classes (Ankle boot, Bag, Sneaker): {r['rare_accuracy']:.4f}" in capsys.readouterr().out
    balanced = tc.run(
        tc.load_config(
            tc.ClassifierJobConfig, "jobs/configs/train_classifier_smoke.yaml", [*common, "data.max_images=100"]
        ),
        progress=False,
    )
    assert balanced["real_class_counts"] == [10] * 10 and balanced["rare_classes"] is None
    assert balanced["rare_accuracy"] is None


def test_classifier_job_draws_real_rows_class_balanced_when_asked():
    from synthgen.classify import arm_batches

    tc = _classifier_job()
    names = tuple(f"c{i}" for i in range(10))
    labels = np.repeat(np.arange(10), TAIL)
    real = ImageData("real", np.zeros((len(labels), 1, 4, 4), np.uint8), labels, names)
    cfg = tc.ClassifierJobConfig(shards="unused", train_on="real", batch_size=50, steps=8, class_balanced=True)
    loader = arm_batches(real, None, tc.settings_of(cfg, real, None))
    assert np.bincount(np.concatenate([y.numpy() for _, y in loader]), minlength=10).tolist() == [40] * 10
    loader = arm_batches(real, None, tc.settings_of(dataclasses.replace(cfg, class_balanced=False), real, None))
    assert np.bincount(np.concatenate([y.numpy() for _, y in loader]), minlength=10)[0] > 100  # the real mix


def test_classifier_job_refuses_two_subsets():
    tc = _classifier_job()
    with pytest.raises(ConfigError, match=r"data.class_counts=\[5, 5\] and data.max_images=600 both pick a subset"):
        tc.load_config(
            tc.ClassifierJobConfig,
            "jobs/configs/train_classifier_smoke.yaml",
            ["data.class_counts=[5, 5]", "data.max_images=600"],
        )


def test_a_stored_generator_with_its_data_root_made_absolute_is_the_same_recipe(tmp_path, monkeypatch):
    # training saves data.root absolute (workers of a joined cluster need it); the cache must still match
    from synthgen.config import ExperimentConfig, dump_yaml, load_config
    from synthgen.evaluate.uplift import _same_recipe
    from synthgen.train.trainer import with_absolute_data_root

    monkeypatch.chdir(tmp_path)
    cfg = load_config(ExperimentConfig, None, ["data.source=imagefolder", "data.root=data/my_images"])
    assert _same_recipe(dump_yaml(with_absolute_data_root(cfg)), cfg)
    other = load_config(ExperimentConfig, None, ["data.source=imagefolder", "data.root=data/other_images"])
    assert not _same_recipe(dump_yaml(with_absolute_data_root(other)), cfg)
