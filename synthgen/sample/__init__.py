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

from importlib import import_module
from typing import Any

# Lazy (PEP 562): a fleet's encode and write tasks import their own light modules of this package, and a Ray
# worker that runs only those must not pay for torch and the models (about 1.5 s per fresh worker).
_EXPORTS = {
    "SampleConfig": "synthgen.sample.config",
    "SampleResult": "synthgen.sample.run",
    "run_sample": "synthgen.sample.run",
    "VerifyReport": "synthgen.sample.verify",
    "verify_output": "synthgen.sample.verify",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'synthgen.sample' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
