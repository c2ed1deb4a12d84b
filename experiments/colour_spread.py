"""How many looks a translator gives its outputs: colour spread across images, and change between noise draws.

    python experiments/colour_spread.py runs/pixelda_rgb --out experiments/results/transfer/spread/pixelda.json
    python experiments/colour_spread.py --real data/fmnist_rgb32 --out experiments/results/transfer/spread/real_b.json

A translator that gives every item one colour scheme teaches a classifier one look where B has many. For
``--num-images`` of domain A's test images (the first ones), translated twice each (variations 0 and 1 of
``synthgen.translation.translate_rows``, the sampling path; a deterministic translator gives the same image twice),
it reports, in pixel levels (0-255):
* colour_spread: the std across images of each image's mean colour, averaged over the channels (B's real images:
  ``--real``, the same figure for the first images of that ImageFolder's test split);
* noise_change: the mean |difference| between the two translations of one input (0 when deterministic);
* input_change: the same between the translations (first draw) of consecutive different inputs, for scale.
The result (with the command and the commit) is written atomically to ``--out``. Nothing is asserted here.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
from store_result import head_commit, write_atomic  # noqa: E402


def colour_spread(images: np.ndarray) -> float:
    """Std across images of the mean colour of each image [N, C, H, W] (uint8), averaged over the C channels."""
    means = images.astype(np.float64).mean(axis=(2, 3))  # [N, C]
    return float(means.std(axis=0).mean())


def translator_figures(path: str, num_images: int) -> dict[str, Any]:
    """colour_spread, noise_change and input_change of the EMA translator at ``path`` on A's first test images."""
    from synthgen.data import load_images
    from synthgen.translation import load_translator, translate_rows, translator_inputs

    G, info = load_translator(path)
    data = load_images(info.config.data, "test")
    inputs = translator_inputs(data.images[:num_images], info)  # [N, C_in, H, W]
    per_image = 1 if info.variation == "none" else 2
    out = translate_rows(
        G,
        inputs,
        data.labels[:num_images],
        0,
        len(inputs) * per_image,
        per_image=per_image,
        seed=0,
        variation=info.variation,
        chunk_size=64,
    ).reshape(len(inputs), per_image, *info.output_shape)  # [N, K, C, H, W]
    first = out[:, 0].astype(np.float64)
    return {
        "model": info.config.model.name,
        "step": info.step,
        "variation": info.variation,
        "num_images": len(inputs),
        "colour_spread": colour_spread(out[:, 0]),
        "noise_change": float(np.abs(first - out[:, -1]).mean()),
        "input_change": float(np.abs(first[1:] - first[:-1]).mean()),
    }


def real_figures(root: str, num_images: int) -> dict[str, Any]:
    """colour_spread of the first ``num_images`` test images of the RGB ImageFolder ``root``."""
    from synthgen.config import DataConfig
    from synthgen.data import load_images

    data = load_images(DataConfig(source="imagefolder", root=root, channels=3, resolution=32), "test")
    return {"real": root, "num_images": num_images, "colour_spread": colour_spread(data.images[:num_images])}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", nargs="?", help="a translator's run or checkpoint folder")
    p.add_argument("--real", metavar="ROOT", help="instead: B's real images, an RGB ImageFolder root (32 px)")
    p.add_argument("--num-images", type=int, default=1000, help="A's test images translated (default 1000)")
    p.add_argument("--out", required=True, help="the result file to write (refused if it exists)")
    args = p.parse_args(argv)
    if bool(args.run) == bool(args.real):
        p.error("give a translator run or --real ROOT, one of them")
    if os.path.exists(args.out):
        p.error(f"{args.out} exists: results are not rewritten; delete it first to measure again")
    figures = real_figures(args.real, args.num_images) if args.real else translator_figures(args.run, args.num_images)
    command = "python experiments/colour_spread.py " + " ".join(argv if argv is not None else sys.argv[1:])
    write_atomic(Path(args.out), {**figures, "command": command, "commit": head_commit()})
    print(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
