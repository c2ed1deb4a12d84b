"""Where the sampling fleet's time goes: the same fleet writing Parquet only, the PNG tree only and both, with PNGs
encoded in Ray tasks and in the actors, and under other CPU reservations, between two runs of the bare loop
(numbers, not asserts).

    python benchmarks/bench_sample_formats.py                       # 50,000 images per fleet run, about 5 minutes
    python benchmarks/bench_sample_formats.py --smoke-test          # 1,000 images per run, about a minute
    python benchmarks/bench_sample_formats.py --formats both --places task --rounds 2 \\
        --reservations 0.75:0.5,0.75:0.25,0.5:0.5,0.75:0.125     # how many encode tasks at once

Each fleet run starts a fresh local Ray (``bench_sample.fleet_run``) on an untrained default cdcgan, 2 actors, the
sampler's batch and shard size; runs go round-robin over the settings, ``--rounds`` times. The bare loop is
``bench_sample.bare_loop`` (batch 256, 2 threads): latents + forward + PNG encode in this process, no Ray, no files.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_sample  # noqa: E402

from synthgen.config import ExperimentConfig, from_dict  # noqa: E402
from synthgen.errors import ConfigError  # noqa: E402
from synthgen.sample.config import ENCODE_PLACES, SampleConfig  # noqa: E402
from synthgen.shards.formats import FORMATS  # noqa: E402
from synthgen.train.untrained import write_random_checkpoint  # noqa: E402


def _reservations(text: str) -> list[tuple[float, float]]:
    """``"0.75:0.5,0.5:0.5"`` -> [(CPUs per actor, CPUs per encode/write task), ...].

    Raises:
        ConfigError: not a comma list of ``A:E`` number pairs.
    """
    try:
        return [(float(a), float(e)) for a, e in (item.split(":") for item in text.split(",") if item.strip())]
    except ValueError:
        raise ConfigError(
            f"--reservations {text!r}: give ACTOR_CPUS:ENCODER_CPUS pairs, e.g. 0.75:0.5,0.5:0.5"
        ) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-samples", type=int, default=50_000, help="images per fleet run (default 50000)")
    parser.add_argument("--bare-images", type=int, default=20_000, help="images of each bare-loop run (default 20000)")
    parser.add_argument("--formats", default=",".join(FORMATS), help=f"comma list of {list(FORMATS)} (default all)")
    parser.add_argument(
        "--places", default=",".join(ENCODE_PLACES), help="comma list of encode_in values (default all)"
    )
    parser.add_argument(
        "--reservations",
        default="0.75:0.5",
        help="comma list of CPUS_PER_ACTOR:CPUS_PER_ENCODER (default 0.75:0.5, bench_sample's: one encode task at a "
        "time beside 2 actors on 2 CPUs)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="passes over all the settings (default 1)")
    parser.add_argument("--smoke-test", action="store_true", help="1,000 images per fleet run, 2,000 in the bare loop")
    args = parser.parse_args(argv)
    if args.smoke_test:
        args.num_samples, args.bare_images = 1000, 2000
    checkpoint = write_random_checkpoint(tempfile.mkdtemp(prefix="bench-ckpt-"), from_dict(ExperimentConfig, {}))
    try:  # every setting checked before anything is measured: a typo fails now, not after minutes of runs
        configs = [
            SampleConfig(
                checkpoint=checkpoint,
                out="fleet",  # set per run below
                num_samples=args.num_samples,
                format=fmt,
                num_actors=2,
                cpus_per_actor=actor_cpus,
                cpus_per_encoder=encoder_cpus,
                encode_in=place,
                progress=False,
            )
            for fmt in args.formats.split(",")
            for place in args.places.split(",")
            for actor_cpus, encoder_cpus in _reservations(args.reservations)
        ]
        for cfg in configs:
            cfg.validate()
    except ConfigError as exc:
        parser.error(str(exc))
    print(f"bare loop (batch 256, 2 threads): {bench_sample.bare_loop(checkpoint, args.bare_images, 256, 2):.0f} img/s")
    # Every run's output stays until the end: on ext4 without a journal (the 2-core VM's disk) files created for up
    # to six minutes after a mass delete pay per file for it (bench_sample.py's docstring), the bare loop never does
    with tempfile.TemporaryDirectory(prefix="bench-out-") as tmp:
        for r in range(args.rounds):
            for i, cfg in enumerate(configs):
                out = os.path.join(tmp, f"fleet-{r:02d}-{i:02d}")
                e2e, steady, _ = bench_sample.fleet_run(dataclasses.replace(cfg, out=out))
                print(
                    f"fleet {cfg.format:<8} PNGs encoded in the {cfg.encode_in:<6} actors x {cfg.cpus_per_actor:g} "
                    f"CPU, encoders x {cfg.cpus_per_encoder:g} CPU: end-to-end {e2e:.0f} img/s, steady {steady:.0f}",
                    flush=True,
                )
    print(f"bare loop (batch 256, 2 threads): {bench_sample.bare_loop(checkpoint, args.bare_images, 256, 2):.0f} img/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
