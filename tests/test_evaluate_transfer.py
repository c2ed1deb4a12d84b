"""The transfer metric of a translation checkpoint: every arm end to end, A's images kept apart from the translator's
B half, the refusals (no B half, a noise checkpoint, noise metrics on a translator) and the generic augmentation.

Fast: tiny gray (A) and RGB (B) imagefolders in tmp_path whose files are named by item index, an untrained cyclegan
checkpoint written by the training code's own ``write_random_checkpoint``, classifiers of a few steps.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from synthgen.config import DataConfig, ExperimentConfig, from_dict, load_config
from synthgen.data import load_images
from synthgen.errors import ConfigError
from synthgen.evaluate.config import EvalConfig, TransferConfig
from synthgen.evaluate.generic_augment import generic_augment
from synthgen.evaluate.report import format_table
from synthgen.evaluate.run import evaluate, metrics_for_source, open_source
from synthgen.evaluate.transfer import ARMS
from synthgen.evaluate.transfer_data import halves, load_transfer_data, seed_sets
from synthgen.train.untrained import write_random_checkpoint

SIDE = 16  # the smallest side a translator takes
A_CLASSES = ("band0", "band1", "band2")  # A's and B's folders differ in name: transfer pairs classes by index
B_CLASSES = ("0-top", "1-middle", "2-bottom")
PER_CLASS = {"train": 12, "test": 6}  # items per class and split: item k * 100 + i of class k


def _item(label: int, index: int) -> np.ndarray:
    """A's gray image of an item: a bright band in the third of the rows of its class, noise elsewhere."""
    rng = np.random.default_rng(index)
    img = rng.integers(0, 40, (SIDE, SIDE))
    img[label * 5 : label * 5 + 5, 2:-2] += 180
    return np.clip(img, 0, 255).astype(np.uint8)


def _write_domains(root) -> tuple[str, str]:
    """A (gray) and B (the same items coloured on a coloured background) as imagefolders of <index>.png files."""
    a_root, b_root = root / "a", root / "b"
    for split, n in PER_CLASS.items():
        for k in range(3):
            (a_root / split / A_CLASSES[k]).mkdir(parents=True)
            (b_root / split / B_CLASSES[k]).mkdir(parents=True)
            for i in range(n):
                index = k * 100 + i
                gray = _item(k, index)
                Image.fromarray(gray).save(a_root / split / A_CLASSES[k] / f"{index}.png")
                alpha = gray[..., None] / 255.0
                rgb = alpha * np.array([250, 200, 40]) + (1 - alpha) * np.array([30, 60, 160])
                Image.fromarray(rgb.astype(np.uint8)).save(b_root / split / B_CLASSES[k] / f"{index}.png")
    return str(a_root), str(b_root)


@pytest.fixture(scope="module")
def domains(tmp_path_factory) -> tuple[str, str]:
    return _write_domains(tmp_path_factory.mktemp("transfer_data"))


def translator(run_dir: str, a_root: str, b_root: str, b_half: str = "even") -> str:
    """An untrained cyclegan checkpoint from A (gray) to B (RGB), its B images on ``b_half`` of the item indices."""
    config = load_config(
        ExperimentConfig,
        None,
        [
            "data.source=imagefolder",
            f"data.root={a_root}",
            f"data.resolution={SIDE}",
            "data.channels=1",
            "data_b.source=imagefolder",
            f"data_b.root={b_root}",
            f"data_b.resolution={SIDE}",
            "data_b.channels=3",
            *([f"data_b.index_half={b_half}"] if b_half else []),
            "model.name=cyclegan",
            "model.arch.g_channels=4",
            "model.arch.g_blocks=1",
            "model.arch.d_channels=4",
        ],
    )
    return write_random_checkpoint(run_dir, config, class_names=A_CLASSES, step=1)


TINY = {
    "num_threads": 1,
    "num_source": 12,
    "num_oracle": 12,
    "label_fraction": 0.25,
    "steps": 3,
    "batch_size": 8,
    "generic_copies": 2,
}


def transfer_config(ckpt: str, out: str, **transfer) -> EvalConfig:
    t = from_dict(TransferConfig, {**TINY, "seeds": [0, 1], "choosing_seeds": [0], **transfer})
    cfg = EvalConfig(checkpoint=ckpt, out=out, metrics=("transfer",), transfer=t)
    cfg.validate()
    return cfg


def test_transfer_runs_every_arm_on_the_half_the_translator_never_saw_in_b(domains, tmp_path):
    a_root, b_root = domains
    ckpt = translator(str(tmp_path / "run"), a_root, b_root)
    out = tmp_path / "eval"
    rows = evaluate(transfer_config(ckpt, str(out), steps=40), progress=False)
    assert [r["metric"] for r in rows] == ["transfer"] and rows[0]["judge"] is None
    r = rows[0]["results"]
    assert tuple(r["arms"]) == ARMS
    for arm in ARMS:
        assert len(r["arms"][arm]["values"]) == 2 and all(0 <= v <= 1 for v in r["arms"][arm]["values"]), arm
        assert set(r["per_class"][arm]) == set(B_CLASSES)
    assert r["class_map"] == dict(zip(A_CLASSES, B_CLASSES))
    source_only, oracle, translated = (
        np.array(r["arms"][a]["values"]) for a in ("source_only", "oracle", "translated")
    )
    gap = oracle - source_only
    closure = np.where(gap != 0, (translated - source_only) / np.where(gap != 0, gap, 1), np.nan)
    got = [float(v) for v in r["gap_closure"]["values"]]  # a seed without a gap has no closure: "nan" in JSON
    assert got == pytest.approx(closure.tolist(), nan_ok=True)
    assert oracle.min() > 0.5  # B's own labels learn the bands: the arms are really trained and tested
    assert r["confirmation"]["seeds"] == [1] and len(r["confirmation"]["gap_closure"]["values"]) == 1
    assert set(r["targets"]) == {
        "gap_closure",
        "translated_minus_generic_points",
        "oracle_minus_few_b_plus_translated_points",
    }
    few_plus = np.array(r["arms"]["few_b_plus_translated"]["values"])
    assert r["oracle_minus_few_b_plus_translated_points"]["mean"] == pytest.approx(100 * (oracle - few_plus).mean())
    gap_target = r["targets"]["oracle_minus_few_b_plus_translated_points"]
    assert gap_target["met"] == (100 * (oracle - few_plus).mean() <= 5) and gap_target["target"] == "<= 5"
    # the A images used are all items of the odd half; the translator's B images are the even ones
    assert r["halves"]["source"] == "odd" and r["halves"]["translator_b"] == "even"
    assert r["halves"]["source_parity"] == [{"even": 0, "odd": 12}] * 2
    assert r["halves"]["overlap_with_translator_b"] == [0, 0]
    assert rows[0]["counts"] == {"source": 12, "generic_pool": 24, "oracle": 12, "few_b": 3, "b_test": 18}
    text = format_table(rows)
    assert "transfer: A translated into B" in text and "gap closed" in text and "confirmation seeds 1" in text
    assert json.loads((out / "metrics.jsonl").read_text())["metric"] == "transfer"
    assert not (out / "report.html").exists()  # the report shows generated sets; a translator has none


def test_a_subset_of_arms_scores_what_the_full_run_scores_and_compares_only_what_it_ran(domains, tmp_path):
    a_root, b_root = domains
    ckpt = translator(str(tmp_path / "run"), a_root, b_root)
    full = evaluate(
        transfer_config(ckpt, str(tmp_path / "full"), steps=30, seeds=[0], choosing_seeds=[]), progress=False
    )
    picked = ("translated_plus_generic", "source_generic_aug")  # given out of order: run in ARMS' order
    rows = evaluate(
        transfer_config(ckpt, str(tmp_path / "sub"), steps=30, seeds=[0], choosing_seeds=[], arms=list(picked)),
        progress=False,
    )
    r, f = rows[0]["results"], full[0]["results"]
    assert tuple(r["arms"]) == ("source_generic_aug", "translated_plus_generic")
    for arm in picked:  # the same seed gives an arm the same classifier whichever other arms run
        assert r["arms"][arm]["values"] == f["arms"][arm]["values"], arm
    diff = 100 * (r["arms"]["translated_plus_generic"]["mean"] - r["arms"]["source_generic_aug"]["mean"])
    assert r["translated_plus_generic_minus_generic_points"]["mean"] == pytest.approx(diff)
    assert "gap_closure" not in r and r["targets"] == {}  # their arms were not run
    assert "gap_closure" in f and f["translated_plus_generic_minus_generic_points"]["mean"] == pytest.approx(diff)
    text = format_table(rows)
    assert "translated A + generic-augmented A" in text and "A translated into B |" not in text


def test_a_subset_of_arms_builds_only_the_sets_its_arms_train_on(domains, tmp_path, monkeypatch):
    import synthgen.evaluate.transfer as transfer_module

    def never(*args, **kwargs):
        raise AssertionError("built a set no selected arm trains on")

    monkeypatch.setattr(transfer_module, "translate", never)
    monkeypatch.setattr(transfer_module, "generic_augment", never)
    a_root, b_root = domains
    ckpt = translator(str(tmp_path / "run"), a_root, b_root)
    cfg = transfer_config(ckpt, str(tmp_path / "eval"), seeds=[0], choosing_seeds=[], arms=["oracle", "few_b"])
    rows = evaluate(cfg, progress=False)
    assert tuple(rows[0]["results"]["arms"]) == ("oracle", "few_b")
    with pytest.raises(AssertionError, match="no selected arm"):  # an arm that needs the translation asks for it
        evaluate(dataclasses.replace(cfg, transfer=dataclasses.replace(cfg.transfer, arms=("translated",))))


def test_the_generic_augmented_translated_arm_augments_the_translations_not_a(domains, tmp_path, monkeypatch):
    import synthgen.evaluate.transfer as transfer_module

    translations, augmented_inputs = [], []
    real_translate, real_augment = transfer_module.translate, transfer_module.generic_augment

    def recording_translate(*args, **kwargs):
        translations.append(real_translate(*args, **kwargs))
        return translations[-1]

    def recording_augment(images, *args, **kwargs):
        augmented_inputs.append(images.copy())
        return real_augment(images, *args, **kwargs)

    monkeypatch.setattr(transfer_module, "translate", recording_translate)
    monkeypatch.setattr(transfer_module, "generic_augment", recording_augment)
    a_root, b_root = domains
    ckpt = translator(str(tmp_path / "run"), a_root, b_root)
    arms = ["source_generic_aug", "translated_generic_aug"]
    cfg = transfer_config(ckpt, str(tmp_path / "eval"), seeds=[0], choosing_seeds=[], arms=arms)
    r = evaluate(cfg, progress=False)[0]["results"]
    assert len(translations) == 1 and len(augmented_inputs) == 2  # A's pool, then the translations' own
    assert augmented_inputs[0].shape[1] == 1  # the generic arm augments A's gray images
    np.testing.assert_array_equal(augmented_inputs[1], translations[0].images)  # this arm: the RGB translations
    diff = 100 * (r["arms"]["translated_generic_aug"]["mean"] - r["arms"]["source_generic_aug"]["mean"])
    assert r["translated_generic_aug_minus_generic_points"]["mean"] == pytest.approx(diff)


def test_the_images_each_seed_uses_are_the_halves_load_images_gives(domains, tmp_path):
    a_root, b_root = domains
    ckpt = translator(str(tmp_path / "run"), a_root, b_root, b_half="odd")
    cfg = transfer_config(ckpt, str(tmp_path / "eval"))
    source = open_source(cfg)
    h = halves(source.experiment)
    b_all, test = load_images(source.data_cfg, "train"), load_images(source.data_cfg, "test")
    data = load_transfer_data(h, b_all, test)
    t = cfg.transfer
    for seed in t.seeds:
        sets = seed_sets(data, t, seed)
        assert (
            (sets.source_keys % 2 == 0).all() and (sets.oracle_keys % 2 == 1).all() and (sets.few_keys % 2 == 1).all()
        )
        assert not set(sets.source_keys) & set(data.translator_b_keys())
        want = load_images(dataclasses.replace(h.b, max_images=t.num_oracle, subset_seed=seed))
        np.testing.assert_array_equal(sets.oracle.images, want.images)  # exactly load_images' subset of B's half
        for key, image, label in zip(sets.source_keys, sets.source.images, sets.source.labels):  # A's own files
            stored = np.asarray(Image.open(os.path.join(a_root, "train", A_CLASSES[label], f"{key}.png")))
            np.testing.assert_array_equal(image[0], stored)
        assert sets.source.class_names == B_CLASSES and len(sets.few) == 3
    other = seed_sets(data, t, 1)
    assert not np.array_equal(seed_sets(data, t, 0).source_keys, other.source_keys)  # the seed picks the subset


def test_a_pix2pix_on_outlines_translates_the_outlines_of_the_other_half_of_its_own_data(domains, tmp_path):
    _, b_root = domains
    config = load_config(
        ExperimentConfig,
        None,
        [
            "data.source=imagefolder",
            f"data.root={b_root}",
            f"data.resolution={SIDE}",
            "data.channels=3",
            "data.pairs=edges",
            "data.index_half=odd",  # the translator's B images (and outlines): the odd items
            "model.name=pix2pix",
            "model.arch.g_channels=4",
            "model.arch.d_channels=4",
        ],
    )
    ckpt = write_random_checkpoint(str(tmp_path / "run"), config, class_names=B_CLASSES, step=1)
    rows = evaluate(transfer_config(ckpt, str(tmp_path / "eval"), seeds=[0], choosing_seeds=[]), progress=False)
    r = rows[0]["results"]
    assert tuple(r["arms"]) == ARMS and r["confirmation"] is None
    assert r["halves"]["source"] == "even" and r["halves"]["source_parity"] == [{"even": 12, "odd": 0}]
    assert r["translator"]["variation"] == "edges+dropout"


def test_a_translator_without_a_b_half_and_sizes_beyond_a_half_are_refused_before_anything_is_written(
    domains, tmp_path
):
    a_root, b_root = domains
    out = tmp_path / "eval"
    whole = translator(str(tmp_path / "whole"), a_root, b_root, b_half="")
    with pytest.raises(ConfigError, match=r"data_b.index_half is ''.*train the translator with data_b.index_half"):
        evaluate(transfer_config(whole, str(out)), progress=False)
    halved = translator(str(tmp_path / "halved"), a_root, b_root)
    with pytest.raises(ConfigError, match=r"transfer.num_source=19 is more than the 18 .* odd half"):
        evaluate(transfer_config(halved, str(out), num_source=19), progress=False)
    assert not out.exists()


def test_transfer_and_the_noise_metrics_each_refuse_the_other_kind_of_checkpoint(domains, tmp_path):
    a_root, b_root = domains
    noise = write_random_checkpoint(str(tmp_path / "noise"), ExperimentConfig())
    with pytest.raises(
        ConfigError, match=r"is a generator that draws images from noise.*\['transfer'\] measure a translation"
    ):
        evaluate(EvalConfig(checkpoint=noise, out=str(tmp_path / "e1"), metrics=("fd", "transfer")), progress=False)
    ckpt = translator(str(tmp_path / "run"), a_root, b_root)
    with pytest.raises(ConfigError, match=r"is a translation checkpoint.*The metrics for this source: \['transfer'\]"):
        evaluate(EvalConfig(checkpoint=ckpt, out=str(tmp_path / "e2"), metrics=("fd",)), progress=False)
    # every metric (the default) means every metric that fits the checkpoint
    assert metrics_for_source(EvalConfig(checkpoint=ckpt), open_source(EvalConfig(checkpoint=ckpt))).metrics == (
        "transfer",
    )
    noise_cfg = EvalConfig(checkpoint=noise)
    assert "transfer" not in metrics_for_source(noise_cfg, open_source(noise_cfg)).metrics
    assert "fd" in metrics_for_source(noise_cfg, open_source(noise_cfg)).metrics
    assert not (tmp_path / "e1").exists() and not (tmp_path / "e2").exists()


def test_generic_augmentation_is_seeded_per_item_and_colours_gray_images():
    t = TransferConfig(generic_copies=3)
    gray = np.stack([_item(k % 3, k)[None] for k in range(6)])  # [6, 1, 16, 16]
    keys = np.arange(100, 106)
    torch.manual_seed(7)
    expect_next = torch.rand(1)
    torch.manual_seed(7)
    pool = generic_augment(gray, keys, seed=0, t=t)
    assert torch.equal(torch.rand(1), expect_next)  # the global RNG is left as it was
    assert pool.shape == (18, 3, SIDE, SIDE) and pool.dtype == np.uint8
    np.testing.assert_array_equal(pool, generic_augment(gray, keys, seed=0, t=t))  # deterministic
    np.testing.assert_array_equal(pool[6:9], generic_augment(gray[2:3], keys[2:3], seed=0, t=t))  # per item, any batch
    assert not np.array_equal(pool, generic_augment(gray, keys, seed=1, t=t))  # the seed matters
    assert not np.array_equal(pool[0], pool[1])  # so does the copy
    rgb = pool.astype(np.int16)
    assert (np.abs(rgb[:, 0] - rgb[:, 1]).mean(axis=(1, 2)) > 5).all()  # coloured: the channels differ in every copy
    dark = gray[:, 0] < 20  # [6, H, W] the items' (near-black) background
    background = np.repeat(dark, 3, axis=0)[:, None].repeat(3, axis=1)  # [18, 3, H, W]: row i * 3 + j is image i's
    assert rgb[background].mean() > 40  # the black background took a colour
    assert generic_augment(gray, keys, seed=0, t=t, channels=1).shape == (18, 1, SIDE, SIDE)


def test_the_transfer_section_is_validated_and_takes_dotted_overrides():
    cfg = load_config(
        EvalConfig, None, ["checkpoint=x", "transfer.seeds=[3,4,5]", "transfer.choosing_seeds=[3]", "transfer.steps=7"]
    )
    assert cfg.transfer.seeds == (3, 4, 5) and cfg.transfer.choosing_seeds == (3,) and cfg.transfer.steps == 7
    bad = {
        "transfer.choosing_seeds=[9]": r"transfer.choosing_seeds=\[9\] is invalid: must be a subset of transfer.seeds",
        "transfer.seeds=[]": "transfer.seeds=.* is invalid: must be a non-empty list of distinct seeds",
        "transfer.seeds=[1,1]": "transfer.seeds=.* distinct",
        "transfer.label_fraction=0": r"transfer.label_fraction=0.0 is invalid: must be in \(0, 1\]",
        "transfer.synthetic_fraction=1.0": "transfer.synthetic_fraction=1.0 is invalid",
        "transfer.generic_copies=0": "transfer.generic_copies=0 is invalid: must be >= 1",
        "transfer.batch_size=1": "transfer.batch_size=1 is invalid: must be >= 2",
        "transfer.no_such_key=1": "no_such_key",
        "transfer.arms=[translated,nope]": r"transfer.arms=\['translated', 'nope'\] is invalid: must be distinct names",
        "transfer.arms=[oracle,oracle]": "transfer.arms=.* distinct names",
    }
    for override, message in bad.items():
        with pytest.raises(ConfigError, match=message):
            load_config(EvalConfig, None, ["checkpoint=x", override]).validate()


def test_a_s_half_is_the_opposite_of_b_s_whatever_half_the_translator_trained_a_on():
    for a_half in ("", "even", "odd"):
        config = from_dict(
            ExperimentConfig,
            {
                "data": {"index_half": a_half},
                "data_b": dataclasses.asdict(DataConfig(source="imagefolder", root="b", channels=3, index_half="even")),
                "model": {"name": "cyclegan"},
            },
        )
        assert halves(config).a.index_half == "odd" and halves(config).b.index_half == "even"
