"""Ray job entrypoint: train a GAN with Ray Train DDP workers.

    ray job submit --working-dir . -- python jobs/train.py --config jobs/configs/fashion_mnist.yaml
    python jobs/train.py --config jobs/configs/fashion_mnist.yaml --smoke-test   # a minute on a CPU

Takes every option of `synthgen train` (--config, --set, --dry-run, --resume, --smoke-test); the
config defaults to jobs/configs/fashion_mnist.yaml. Exit codes: 0 ok, 1 runtime failure, 2 config error.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # the job's working_dir: run from a checkout without installing

from synthgen.cli import run_job  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_job("train", sys.argv[1:], default_config=os.path.join(ROOT, "jobs", "configs", "fashion_mnist.yaml")))
