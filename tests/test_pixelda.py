"""pixelda (synthgen.models.pixelda): the noise-input translator with a task classifier. Its options' refusals, what
its losses reward, that sampling draws a new, reproducible variation per sample id, a real Ray Train run and the
fleet's bytes across actor counts."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from shard_data import provenance_rows
from test_sample_translate import SIZES, _cfg, _folder, gray_to_rgb_checkpoint
from test_translation_train import cycle_config, rgb_folder

from synthgen.data.shard_dataset import SyntheticShardDataset
from synthgen.errors import ConfigError
from synthgen.models.pixelda import PixelDAObjective, PixelDAOptions, build_pixelda
from synthgen.sample.run import run_sample
from synthgen.sample.verify import verify_output
from synthgen.train.trainer import train
from synthgen.translation import check_per_image, load_translator, translate_rows, variation_kind

SMALL = PixelDAOptions(g_channels=8, g_blocks=1, d_channels=8, classifier_width=4)


@pytest.mark.parametrize(
    "arch, expect",
    [
        ({"noise_dim": 0}, "noise_dim"),
        ({"adversarial_weight": 0.0}, "adversarial_weight"),
        ({"task_weight": -1.0}, "task_weight"),
        ({"g_downsamplings": 4}, "g_downsamplings"),
        ({"mode_seeking_weight": -0.1}, "mode_seeking_weight"),
    ],
)
def test_options_refuse_settings_that_cannot_train(arch, expect):
    with pytest.raises(ConfigError, match=expect):
        PixelDAOptions(**arch)


def test_domain_a_without_classes_is_refused():
    with pytest.raises(ConfigError, match="labels"):
        build_pixelda(SMALL, (1, 32, 32), (3, 32, 32), num_classes=1)


def test_noise_changes_the_translation_and_a_seed_repeats_it():
    torch.manual_seed(0)
    G, _ = build_pixelda(SMALL, (1, 32, 32), (3, 32, 32), num_classes=3)
    G.eval()
    a = torch.rand(4, 1, 32, 32) * 2 - 1
    z = torch.rand(4, SMALL.noise_dim) * 2 - 1
    out = G(a, torch.zeros(4, dtype=torch.long), z)
    assert out["fake_b"].shape == (4, 3, 32, 32) and out["logits_fake"].shape == out["logits_a"].shape == (4, 3)
    other = G.generate(a, -z)
    assert (other - out["fake_b"]).abs().max() > 1e-4  # z reaches the image
    torch.manual_seed(7)
    first = G.translate(a)
    torch.manual_seed(7)
    assert torch.equal(first, G.translate(a))
    assert not torch.equal(first, G.translate(a))  # the next draw is another variation


def test_the_task_loss_rewards_translations_that_keep_their_labels():
    torch.manual_seed(0)
    G, D = build_pixelda(SMALL, (1, 32, 32), (3, 32, 32), num_classes=3)
    objective = PixelDAObjective(SMALL)
    a, b, labels = torch.rand(6, 1, 32, 32) * 2 - 1, torch.rand(6, 3, 32, 32) * 2 - 1, torch.arange(6) % 3
    out = objective.generate(G, a, b, labels, torch.Generator().manual_seed(0))
    right = {**out, "logits_fake": 20 * torch.nn.functional.one_hot(labels, 3).float()}
    wrong = {**out, "logits_fake": 20 * torch.nn.functional.one_hot((labels + 1) % 3, 3).float()}
    # logits 20 apart: cross-entropy ~20 when wrong, ~0 when right; G's loss weighs the mean of T's two terms by 0.1
    gap = objective.g_loss(D, a, b, labels, wrong) - objective.g_loss(D, a, b, labels, right)
    assert gap.item() == pytest.approx(0.1 * 0.5 * 20, abs=1e-3)
    off = PixelDAObjective(PixelDAOptions(g_channels=8, g_blocks=1, d_channels=8, task_weight=0.0))
    assert off.g_loss(D, a, b, labels, wrong).item() == pytest.approx(off.g_loss(D, a, b, labels, right).item())


def test_mode_seeking_charges_a_generator_that_ignores_its_noise():
    torch.manual_seed(0)
    opts = PixelDAOptions(g_channels=8, g_blocks=1, d_channels=8, classifier_width=4, mode_seeking_weight=1.0)
    G, D = build_pixelda(opts, (1, 32, 32), (3, 32, 32), num_classes=3)
    a, b, labels = torch.rand(6, 1, 32, 32) * 2 - 1, torch.rand(6, 3, 32, 32) * 2 - 1, torch.arange(6) % 3
    objective = PixelDAObjective(opts)
    out = objective.generate(G, a, b, labels, torch.Generator().manual_seed(0))
    assert out["fake_again"].shape == (3, 3, 32, 32)  # the first half translated again with fresh noise
    listening = objective.g_loss(D, a, b, labels, out).item()
    without = PixelDAObjective(SMALL).g_loss(D, a, b, labels, out).item()  # the same outputs, no mode seeking
    assert 0 < listening - without < 1e3
    with torch.no_grad():
        G.noise_map.weight.zero_()  # now z changes nothing: every pair is identical
    deaf = objective.generate(G, a, b, labels, torch.Generator().manual_seed(0))
    assert torch.equal(deaf["fake_b"][:3], deaf["fake_again"])
    assert objective.g_loss(D, a, b, labels, deaf).item() > 1e4  # 1 / eps
    assert "fake_again" not in PixelDAObjective(SMALL).generate(G, a, b, labels, torch.Generator().manual_seed(0))


def test_sampling_draws_one_variation_per_id_whatever_the_chunk_start():
    torch.manual_seed(0)
    G, _ = build_pixelda(SMALL, (1, 32, 32), (3, 32, 32), num_classes=3)
    G.eval()
    assert variation_kind(G, None) == "noise"
    check_per_image(3, "noise")  # variations allowed
    inputs = np.random.default_rng(0).integers(0, 255, (5, 1, 32, 32), dtype=np.uint8)
    labels = np.arange(5) % 3
    kw = dict(per_image=3, variation="noise", chunk_size=4)
    whole = translate_rows(G, inputs, labels, 0, 15, seed=1, **kw)
    parts = np.concatenate([translate_rows(G, inputs, labels, s, min(s + 6, 15), seed=1, **kw) for s in (0, 6, 12)])
    assert whole.shape == (15, 3, 32, 32) and np.array_equal(whole, parts)
    assert not np.array_equal(whole[0], whole[1])  # two variations of one input
    assert not np.array_equal(whole, translate_rows(G, inputs, labels, 0, 15, seed=2, **kw))


@pytest.mark.ray
@pytest.mark.slow
def test_pixelda_trains_between_gray_and_rgb_folders(ray_cluster, tmp_path):
    cfg = cycle_config(
        tmp_path,
        rgb_folder(tmp_path / "rgb"),
        "model.name=pixelda",
        "model.arch={g_channels: 4, g_blocks: 1, d_channels: 4, classifier_width: 4, mode_seeking_weight: 1.0}",
    )
    result = train(cfg)
    payload = torch.load(os.path.join(result.checkpoint_path, "model.pt"), weights_only=True)
    assert payload["image_shape"] == [3, 32, 32] and payload["step"] == 2
    assert {k.split(".")[0] for k in payload["generator_ema"]} == {"noise_map", "net", "task"}
    G, info = load_translator(result.checkpoint_path)
    assert info.variation == "noise" and info.input_shape == (1, 32, 32)


@pytest.fixture(scope="module")
def pixelda_checkpoint(tmp_path_factory):
    base = tmp_path_factory.mktemp("pixelda")
    folder = _folder(base / "gray")
    return gray_to_rgb_checkpoint(str(base / "pixelda"), folder, "pixelda"), folder


@pytest.mark.ray
def test_the_fleets_variations_do_not_depend_on_actors_or_batches(ray_cluster, pixelda_checkpoint, tmp_path):
    checkpoint, folder = pixelda_checkpoint
    one = run_sample(_cfg(checkpoint, folder, tmp_path / "one", num_actors=1, batch_size=16, images_per_shard=7))
    run_sample(_cfg(checkpoint, folder, tmp_path / "two"))
    assert provenance_rows(str(tmp_path / "one")) == provenance_rows(str(tmp_path / "two"))
    assert one.manifest["translate"]["variation"] == "noise" and verify_output(str(tmp_path / "two")).ok
    ds = SyntheticShardDataset(str(tmp_path / "two"), output="tensor")
    got = np.stack([ds[i][0].numpy() for i in range(len(ds))])  # [27, 3, 32, 32]
    assert len(got) == sum(SIZES) * 3 and not np.array_equal(got[0], got[1])


def tinted(images: np.ndarray, seed: int) -> np.ndarray:
    """Domain B of the learning test: gray items [N, 1, H, W] as one random colour, shaded by their intensity, on
    a random background colour far from it (the tint recipe of jobs/make_rgb_dataset.py, without its patterns)."""
    rng = np.random.default_rng(seed)
    n = len(images)
    tint = rng.uniform(0.5, 1.0, (n, 3, 1, 1)) * rng.permutation(np.eye(3)[np.arange(n) % 3])[:, :, None, None]
    background = rng.uniform(0.0, 0.4, (n, 3, 1, 1)) * (1 - tint / tint.max(axis=1, keepdims=True))
    alpha = np.minimum(1.0, 1.4 * images / 255.0)  # [N, 1, H, W]
    return np.round(255 * (alpha * (0.3 + 0.7 * tint) + (1 - alpha) * background)).astype(np.uint8)


@pytest.mark.slow
def test_translations_keep_their_labels_in_domain_b(fashion_mnist_root):
    """250 steps of pixelda from 1,000 real gray Fashion-MNIST items (A) to other items tinted on coloured
    backgrounds (B, unpaired): a classifier trained on labelled B reads the translations of 500 held-out A items
    (through translate_rows, the sampling path) far above chance and far better than an untrained translator's,
    and the translations are not the gray inputs."""
    import copy

    from synthgen.classify import ClassifierSettings, train_arm
    from synthgen.classify.score import score
    from synthgen.config import DataConfig
    from synthgen.data import load_images
    from synthgen.data.base import ImageData

    torch.manual_seed(0)
    data = load_images(DataConfig(root=fashion_mnist_root, max_images=3000, resolution=32), "train")
    to = lambda x: torch.from_numpy(x).float() / 127.5 - 1  # noqa: E731
    a_u8, y = data.images[:1000], torch.from_numpy(data.labels[:1000])
    b_u8 = tinted(data.images[1000:2500], seed=1)
    opts = PixelDAOptions(g_channels=16, g_blocks=2, d_channels=16, classifier_width=16)
    G, D = build_pixelda(opts, (1, 32, 32), (3, 32, 32), 10)
    untrained = copy.deepcopy(G).eval()
    objective = PixelDAObjective(opts)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(0)
    for _ in range(250):
        ia, ib = torch.randint(1000, (16,), generator=gen), torch.randint(1500, (16,), generator=gen)
        a, b, labels = to(a_u8[ia]), to(b_u8[ib]), y[ia]
        out = objective.generate(G, a, b, labels, gen)
        d_loss = objective.d_loss(D, a, b, labels, out)
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        D.requires_grad_(False)
        g_loss = objective.g_loss(D, a, b, labels, out)
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        D.requires_grad_(True)
    G.eval()
    b_labelled = ImageData("b", b_u8, data.labels[1000:2500], data.class_names)
    clf = train_arm(b_labelled, None, ClassifierSettings(steps=300, seed=0), progress=False)
    held, held_labels = data.images[2500:3000], data.labels[2500:3000]

    def accuracy(net: torch.nn.Module) -> tuple[float, np.ndarray]:
        images = translate_rows(net, held, held_labels, 0, 500, per_image=1, seed=0, variation="noise", chunk_size=64)
        return score(clf, ImageData("translated", images, held_labels, data.class_names)).accuracy, images

    translated, images = accuracy(G)
    before, _ = accuracy(untrained)
    moved = np.abs(images.astype(np.float64) - held).mean()  # mean |translation - gray input| in pixel levels
    assert translated > 0.4 and translated > before + 0.2 and moved > 20, (translated, before, moved)
