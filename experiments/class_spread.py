"""How much a conditional generator's images vary within each class: a quick check for within-class collapse.

    python experiments/class_spread.py runs/cmp_fm32_stylegan runs/cmp_fm32_cdcgan  # run or checkpoint folders
    python experiments/class_spread.py --real fashion-mnist                          # the same figures on real images

For each class it draws ``--per-class`` images from the EMA generator (the same z for every class) and reports,
averaged over the classes:
* pixel std: the per-pixel std across the class's images, averaged over pixels;
* mask std: the same for the foreground mask (pixels above -0.8 of [-1, 1]), i.e. how much the silhouette moves;
* brightness std: the std of the images' mean foreground value.
A collapsed class scores near 0 on all three. The figures depend on the data, so compare a generator with real
images of the same set (``--real``) or with another generator of the same set, not across sets.
Nothing is asserted: this is a measurement.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FOREGROUND = -0.8  # pixels above this (in [-1, 1]) count as the item, below as the background


def spread(images: torch.Tensor) -> tuple[float, float, float]:
    """(pixel std, mask std, brightness std) of one class's images [N, C, H, W] in [-1, 1]."""
    gray = images.mean(dim=1)  # [N, H, W]
    mask = (gray > FOREGROUND).float()  # [N, H, W]
    bright = (gray * mask).sum(dim=(1, 2)) / mask.sum(dim=(1, 2)).clamp(min=1.0)  # [N]
    return images.std(dim=0).mean().item(), mask.std(dim=0).mean().item(), bright.std().item()


def generator_rows(path: str, per_class: int, seed: int) -> list[tuple[float, float, float]]:
    """Each class's spread for the EMA generator of ``path``."""
    from synthgen.checkpoint import load_generator

    G, _ = load_generator(path)
    z = torch.randn(per_class, G.z_dim, generator=torch.Generator().manual_seed(seed))  # [P, z_dim]
    with torch.no_grad():
        return [spread(G(z, torch.full((per_class,), k, dtype=torch.long))) for k in range(G.num_classes)]


def real_rows(data_cfg, per_class: int, seed: int) -> list[tuple[float, float, float]]:
    """Each class's spread for ``per_class`` real training images of the data config ``data_cfg``."""
    from synthgen.data import load_images

    data = load_images(data_cfg, "train")
    images, labels = torch.as_tensor(data.images).float() / 127.5 - 1.0, data.labels  # [N, C, H, W], [N]
    rng = np.random.default_rng(seed)
    rows = []
    for k in np.unique(labels):
        pick = rng.choice(np.flatnonzero(labels == k), per_class, replace=False)
        rows.append(spread(images[torch.as_tensor(pick)]))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoints", nargs="*", help="run folders or checkpoint folders")
    parser.add_argument("--real", default="", help="also measure real training images of this data.source")
    parser.add_argument("--root", default="", help="data.root of --real (an imagefolder's folder)")
    parser.add_argument("--channels", type=int, default=1, help="data.channels of --real (default 1)")
    parser.add_argument("--resolution", type=int, default=32, help="data.resolution of --real (default 32)")
    parser.add_argument("--per-class", type=int, default=64, help="images per class (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of z / of the real pick (default 0)")
    args = parser.parse_args(argv)
    if not args.checkpoints and not args.real:
        parser.error("give at least one checkpoint, or --real SOURCE")
    torch.set_num_threads(1)
    named = [(p, lambda p=p: generator_rows(p, args.per_class, args.seed)) for p in args.checkpoints]
    if args.real:
        from synthgen.config import DataConfig

        data_cfg = DataConfig(source=args.real, root=args.root, channels=args.channels, resolution=args.resolution)
        named.append((f"real {args.real}", lambda: real_rows(data_cfg, args.per_class, args.seed)))
    print(f"{'what':48s} {'pixel std':>10s} {'mask std':>10s} {'brightness std':>15s}")
    for name, rows_of in named:
        px, mask, bright = np.mean(rows_of(), axis=0)
        print(f"{name:48s} {px:10.3f} {mask:10.3f} {bright:15.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
