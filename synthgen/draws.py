"""Counter-based latents and labels: sample ``i`` is a pure function of (seed, i).

Nothing here keeps state between calls, so any actor can produce any id range, in any order, any
number of times (retries), and always gets the same numbers:

* latent(i): a standard normal vector from numpy's Philox-4x64 bit generator with
  ``key = (seed, LATENT_DOMAIN)`` and ``counter = (0, i, c, 0)``. Philox is a counter-based
  generator (Salmon et al., 2011): word 1 of the counter names the row, word 2 the candidate ``c``
  (0 unless judge filtering rejected earlier candidates of the row, see ``synthgen.sample.filter``),
  word 0 counts draws inside the row, so rows and candidates never share a stream.
* label(i): the class blocks ``[0]*count_0 + [1]*count_1 + ...`` (exact per-class counts) read
  at position ``perm(i)``, where ``perm`` is a keyed bijection of [0, N) (a Feistel network with
  cycle walking). The label multiset is therefore exact, the order is shuffled by the seed, and
  label(i) needs O(1) memory: nothing depends on how ids are split into shards or batches.
* codes(i) (InfoGAN code values of a generator built with ``model.codes``): ``codes_for``, uniform doubles
  from Philox under ``(seed, CODE_DOMAIN)`` at the latent's counter ``(0, i, c, 0)``: ``2u - 1`` for a
  continuous code, ``floor(u * size)`` for a categorical one. All codes of a row come from one stream, so
  fixing one code (``synthgen sample --code``) leaves the others' values as they were.
* around real images (``synthgen sample --around``): the noise of variation ``j`` of real image ``i``
  (``around_noise``) and the ``r``-th restart of image ``i``'s inversion (``restart_latents``) use the
  same scheme under their own key words (``AROUND_DOMAIN``, ``RESTART_DOMAIN``) with counter
  ``(0, i, j or r, 0)``: pure functions of (seed, i, j), whichever actor or batch computes them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

LATENT_DOMAIN = 0x4C4154454E54_0001  # second Philox key word: keeps latent streams apart from others
LABEL_DOMAIN = 0x4C4142454C53_0002  # mixed into the Feistel keys of the label permutation
AROUND_DOMAIN = 0x41524F554E44_0003  # latent noise of the variations around real images
RESTART_DOMAIN = 0x524553545254_0004  # random restarts of the inversion of real images
CODE_DOMAIN = 0x434F44455300_0005  # InfoGAN code values of the prior samples
FEISTEL_ROUNDS = 8  # >= 4 rounds give a pseudo-random permutation (Luby-Rackoff); 8 for good mixing
_GOLDEN = 0x9E3779B97F4A7C15  # odd constant separating the round keys


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer on uint64 arrays (wrapping arithmetic): a cheap, strong bit mixer."""
    x = x.astype(np.uint64, copy=True)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _check_ids(ids: np.ndarray, n: int | None = None) -> np.ndarray:
    ids = np.asarray(ids, dtype=np.int64)
    if ids.ndim != 1:
        raise ValueError(f"ids must be a 1-D array of sample ids, got shape {ids.shape}")
    if ids.size and ids.min() < 0:
        raise ValueError("sample ids must be >= 0")
    if n is not None and ids.size and ids.max() >= n:
        raise ValueError(f"sample ids must be < {n}, got {int(ids.max())}")
    return ids


def philox_normals(rows: np.ndarray, words: np.ndarray, seed: int, domain: int, dim: int) -> np.ndarray:
    """Standard normal vectors keyed by ``(seed, domain)`` at Philox counters ``(0, rows[k], words[k], 0)``.

    Args:
        rows: int64 [n] counter word 1 (a sample id or a real image's index), >= 0.
        words: int64 [n] counter word 2 (candidate, variation or restart number), >= 0.
        seed: dataset seed in [0, 2**63).
        domain: second key word: keeps unrelated uses of one seed apart.
        dim: length of each vector.

    Returns:
        float32 [n, dim]; row k depends only on (seed, domain, rows[k], words[k], dim).
    """
    rows, words = _check_ids(rows), _check_ids(words)
    if rows.shape != words.shape:
        raise ValueError(f"rows and words must have one shape, got {rows.shape} and {words.shape}")
    out = np.empty((rows.shape[0], dim), dtype=np.float32)  # [n, dim]
    key = np.array([seed, domain], dtype=np.uint64)
    for k, (i, w) in enumerate(zip(rows.tolist(), words.tolist())):
        # One short-lived generator per row (~20 us): the price of exact counter-based streams.
        counter = np.array([0, i, w, 0], dtype=np.uint64)
        out[k] = np.random.Generator(np.random.Philox(key=key, counter=counter)).standard_normal(dim, dtype=np.float32)
    return out


def latents_for(ids: np.ndarray, seed: int, z_dim: int, candidate: int = 0) -> np.ndarray:
    """Latent vectors of sample ``ids``.

    Args:
        ids: int64 [n] sample ids (any order, repeats allowed).
        seed: dataset seed in [0, 2**63).
        z_dim: latent size of the generator.
        candidate: which of the sample's candidate latents (0 = the usual one; judge filtering draws
            1, 2, ... for samples whose earlier candidates were rejected).

    Returns:
        float32 [n, z_dim] prior draws; row r depends only on (seed, ids[r], candidate, z_dim). Truncation
        happens in the generator's latent space (``synthgen.models.latent.images_from_z``).
    """
    ids = _check_ids(ids)
    if candidate < 0:
        raise ValueError(f"candidate must be >= 0, got {candidate}")
    return philox_normals(ids, np.full(ids.shape, candidate, dtype=np.int64), seed, LATENT_DOMAIN, z_dim)


def codes_for(ids: np.ndarray, seed: int, sizes: Sequence[int], candidate: int = 0) -> np.ndarray:
    """InfoGAN code values of sample ``ids`` (the prior's: U(-1, 1) or a uniform category).

    Args:
        ids: int64 [n] sample ids (any order, repeats allowed).
        seed: dataset seed in [0, 2**63).
        sizes: per code, its number of categories, or 0 for a continuous code (``models.codes.code_sizes``).
        candidate: as in ``latents_for`` (judge filtering's later candidates get fresh codes too).

    Returns:
        float32 [n, len(sizes)]; row r depends only on (seed, ids[r], candidate, sizes).
    """
    ids = _check_ids(ids)
    if candidate < 0:
        raise ValueError(f"candidate must be >= 0, got {candidate}")
    out = np.empty((ids.shape[0], len(sizes)), dtype=np.float32)  # [n, num_codes]
    if not len(sizes):
        return out
    key = np.array([seed, CODE_DOMAIN], dtype=np.uint64)
    scale = np.asarray(sizes, dtype=np.float64)  # [num_codes]
    for k, i in enumerate(ids.tolist()):
        counter = np.array([0, i, candidate, 0], dtype=np.uint64)
        u = np.random.Generator(np.random.Philox(key=key, counter=counter)).random(len(sizes))  # [num_codes] in [0, 1)
        out[k] = np.where(scale > 0, np.minimum(np.floor(u * scale), scale - 1), 2.0 * u - 1.0)
    return out


def around_noise(image_ids: np.ndarray, variations: np.ndarray, seed: int, z_dim: int) -> np.ndarray:
    """The latent noise ``eps(seed, i, j)`` of variation ``j`` of real image ``i`` (``--around``).

    Args:
        image_ids: int64 [n] indices of real images in their real set.
        variations: int64 [n] variation numbers j.
        seed: dataset seed.
        z_dim: latent size.

    Returns:
        float32 [n, z_dim] standard normal rows, each a pure function of (seed, i, j).
    """
    return philox_normals(image_ids, variations, seed, AROUND_DOMAIN, z_dim)


def restart_latents(image_ids: np.ndarray, restarts: int, seed: int, z_dim: int) -> np.ndarray:
    """The prior draws an inversion of real images ``image_ids`` starts from: restart r of image i.

    Returns:
        float32 [restarts, n, z_dim]; entry [r, k] depends only on (seed, image_ids[k], r), never on
        which other images are inverted with it.
    """
    ids = _check_ids(image_ids)
    rows = np.tile(ids, restarts)  # [R * n]: restart-major
    words = np.repeat(np.arange(restarts, dtype=np.int64), len(ids))  # [R * n]
    return philox_normals(rows, words, seed, RESTART_DOMAIN, z_dim).reshape(restarts, len(ids), z_dim)


def permute(ids: np.ndarray, n: int, seed: int, domain: int = LABEL_DOMAIN) -> np.ndarray:
    """Apply a seed-keyed pseudo-random bijection of [0, n) to ``ids``.

    A balanced Feistel network permutes [0, 4**h) with 4**h >= n; cycle walking (apply again
    while the value is >= n) restricts it to a bijection of [0, n). Fully vectorised.

    Args:
        ids: int64 [k] values in [0, n).
        n: size of the permuted range (>= 1).
        seed: permutation key.
        domain: extra key material so different uses of one seed give unrelated permutations.

    Returns:
        int64 [k]: perm(ids), distinct for distinct ids, each in [0, n).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    ids = _check_ids(ids, n)
    half = max(1, ((n - 1).bit_length() + 1) // 2)  # bits per Feistel half; 2*half bits cover n
    mask = np.uint64((1 << half) - 1)
    shift = np.uint64(half)
    base = _mix64(np.array([seed ^ domain], dtype=np.uint64))[0]
    round_keys = _mix64(base ^ (np.arange(1, FEISTEL_ROUNDS + 1, dtype=np.uint64) * np.uint64(_GOLDEN)))

    def feistel(x: np.ndarray) -> np.ndarray:
        left, right = x >> shift, x & mask
        for key in round_keys:
            left, right = right, left ^ (_mix64(right ^ key) & mask)
        return (left << shift) | right

    out = feistel(ids.astype(np.uint64))
    outside = out >= np.uint64(n)
    while outside.any():  # expected < 4 walks: the domain is < 4n
        out[outside] = feistel(out[outside])
        outside = out >= np.uint64(n)
    return out.astype(np.int64)


def labels_for(ids: np.ndarray, class_counts: Sequence[int], seed: int) -> np.ndarray:
    """Labels of sample ``ids`` for a dataset with exactly ``class_counts[c]`` samples of class c.

    Args:
        ids: int64 [k] sample ids in [0, sum(class_counts)).
        class_counts: exact count per class index (zeros allowed).
        seed: dataset seed.

    Returns:
        int64 [k] class indices; over all ids 0..N-1 class c appears exactly class_counts[c] times.
    """
    counts = np.asarray(class_counts, dtype=np.int64)
    if counts.ndim != 1 or counts.size == 0 or (counts < 0).any() or counts.sum() < 1:
        raise ValueError(f"class_counts must be non-negative with a positive total, got {list(counts)}")
    total = int(counts.sum())
    position = permute(ids, total, seed)  # [k] in [0, total)
    bounds = np.cumsum(counts)  # class c owns positions [bounds[c-1], bounds[c])
    return np.searchsorted(bounds, position, side="right").astype(np.int64)


def locate(offsets: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(real image i, variation j) of ``--around`` sample ``ids``.

    Args:
        offsets: int64 [N + 1] = [0, cumsum(v)]: real image i owns sample ids [offsets[i], offsets[i + 1]).
        ids: int64 [n] sample ids in [0, offsets[-1]).

    Returns:
        (rows int64 [n], variations int64 [n]).
    """
    rows = np.searchsorted(offsets, ids, side="right") - 1  # images with v_i = 0 are skipped: equal offsets
    return rows.astype(np.int64), (ids - offsets[rows]).astype(np.int64)
