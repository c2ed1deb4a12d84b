"""Inversion: finding the latent a trained generator would draw a real image from, and the encoder that
predicts it in one forward pass.

Used by sampling (``synthgen sample --around``: variations around real images) and by evaluation (the
uplift metric's inversion pool) alike, so it lives in neither.

Modules: ``inversion`` (per-image latent optimisation with seeded restarts), ``encoder`` (the encoder's
config, files, loading and one-pass ``encode``), ``encoder_train`` (``synthgen train-encoder``'s loop),
``commands`` (that subcommand's CLI). Heavy imports (torch) happen at module level here: import these
modules only where inversion is needed.
"""
