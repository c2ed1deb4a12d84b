"""Sampling stage: a fleet of Ray actors samples a trained generator into Parquet/PNG shards.

    from synthgen.sample import SampleConfig, run_sample, verify_output
    result = run_sample(SampleConfig(checkpoint="runs/fashion_mnist", out="synthetic/fm", num_samples=10000))
    assert verify_output("synthetic/fm").ok

Modules: ``config`` (SampleConfig), ``plan`` (shards, class counts), ``prior`` (images drawn from the
prior), ``filter`` (judge filtering), ``around`` and ``realset`` (variations around real images, inverted
with ``synthgen.invert``), ``writer`` and ``out_files`` (a plan's shards, plan.json and manifest, through the
shard format in ``synthgen.shards``), ``actors`` and ``fleet`` (Ray actors), ``run`` (the stage end to end),
``verify``, ``commands`` (CLI). The counter-based latents and labels are ``synthgen.draws``. Heavy imports
(torch, ray) happen inside the functions that need them.
"""

from synthgen.sample.config import SampleConfig
from synthgen.sample.run import SampleResult, run_sample
from synthgen.sample.verify import VerifyReport, verify_output

__all__ = ["SampleConfig", "SampleResult", "VerifyReport", "run_sample", "verify_output"]
