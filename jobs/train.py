"""Ray job entrypoint: train a GAN with Ray Train DDP workers.

    ray job submit --working-dir . -- python jobs/train.py --config jobs/configs/fashion_mnist.yaml
    python jobs/train.py --config jobs/configs/fashion_mnist.yaml --smoke-test   # a minute on a CPU

Takes every option of `synthgen train` (--set, --dry-run, --resume) plus --smoke-test.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the job's working dir

from synthgen.cli import run_job  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_job("train", sys.argv[1:]))
