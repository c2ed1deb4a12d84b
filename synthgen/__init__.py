"""synthgen: train class-conditional GANs with Ray Train and sample them into labelled image shards."""

__version__ = "0.1.0"
