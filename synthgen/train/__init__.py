"""Training stage: Ray Train DDP loop, checkpoints, progress logs."""
