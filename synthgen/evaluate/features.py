"""Pure functions on feature matrices: Fréchet distance, KID, precision/recall, density/coverage, k-NN.

Every function takes float arrays ``[N, F]`` (judge features of real / generated images) and returns
plain Python numbers, so each can be tested on known distributions without any network.
k-NN distances are Euclidean, computed in float32 in row chunks (a 10k x 10k matrix never exists whole);
FD and KID use float64.
"""

from __future__ import annotations

import numpy as np

from synthgen.errors import ConfigError

_CHUNK_ELEMS = 8_000_000  # distance-matrix elements per chunk (~32 MB of float32)


def _as_features(x: np.ndarray, name: str, min_rows: int = 1) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < min_rows:
        raise ConfigError(f"{name} must be a feature matrix [N, F] with N >= {min_rows}, got shape {x.shape}")
    return x


def _check_dims(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape[1] != b.shape[1]:
        raise ConfigError(f"feature sizes differ: {a.shape[1]} vs {b.shape[1]}; extract both with the same judge")


def feature_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [F] and unbiased covariance [F, F] of features [N, F] (N >= 2)."""
    x = _as_features(x, "features", min_rows=2)
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative eigenvalues -> 0)."""
    vals, vecs = np.linalg.eigh((m + m.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def frechet_from_stats(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Fréchet distance between Gaussians N(mu1, cov1) and N(mu2, cov2).

    ``|mu1 - mu2|^2 + tr(cov1) + tr(cov2) - 2 tr((cov1 cov2)^(1/2))``. The trace term is computed as
    ``sum sqrt(eig(s1 cov2 s1))`` with ``s1 = cov1^(1/2)``: that matrix is symmetric PSD and has the
    same eigenvalues as ``cov1 cov2``, so no complex square root (scipy's sqrtm) is needed.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.atleast_2d(cov1).astype(np.float64), np.atleast_2d(cov2).astype(np.float64)
    s1 = _sqrt_psd(cov1)
    eig = np.linalg.eigvalsh(s1 @ cov2 @ s1)
    trace_sqrt = float(np.sqrt(np.clip(eig, 0, None)).sum())
    diff = mu1 - mu2
    fd = float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt)
    return max(fd, 0.0)  # tiny negative values are rounding error


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between the Gaussian fits of features a [N, F] and b [M, F]."""
    a, b = _as_features(a, "a", 2), _as_features(b, "b", 2)
    _check_dims(a, b)
    return frechet_from_stats(*feature_stats(a), *feature_stats(b))


def kernel_inception_distance(
    real: np.ndarray, fake: np.ndarray, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """KID: unbiased MMD^2 with the cubic polynomial kernel ``k(x, y) = (x.y / F + 1)^3``.

    Averaged over ``num_subsets`` random subsets of ``min(subset_size, N, M)`` rows of each set
    (Bińkowski et al. 2018; the estimator of StyleGAN2-ADA's metrics/kernel_inception_distance.py).

    Returns:
        (mean, std) over the subsets. The mean is ~0 for two samples of one distribution (it can be
        slightly negative: the estimator is unbiased).
    """
    real, fake = _as_features(real, "real", 2), _as_features(fake, "fake", 2)
    _check_dims(real, fake)
    n = real.shape[1]
    m = min(subset_size, real.shape[0], fake.shape[0])
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(num_subsets):
        x = real[rng.choice(real.shape[0], m, replace=False)]  # [m, F]
        y = fake[rng.choice(fake.shape[0], m, replace=False)]  # [m, F]
        a = (x @ x.T / n + 1) ** 3 + (y @ y.T / n + 1) ** 3  # [m, m] within-set kernels
        b = (x @ y.T / n + 1) ** 3  # [m, m] cross kernel
        t = (a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m
        values.append(t / m)
    arr = np.asarray(values)
    return float(arr.mean()), float(arr.std())


def pairwise_sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances [N, M] between rows of a [N, F] and b [M, F] (clipped at 0).

    Computed in the inputs' dtype as ``|a|^2 + |b|^2 - 2 a.b`` with in-place updates (the big
    matrices are the cost of every k-NN metric).
    """
    d = a @ b.T  # [N, M]
    d *= -2.0
    d += (a * a).sum(1)[:, None]
    d += (b * b).sum(1)[None, :]
    return np.maximum(d, 0.0, out=d)


def _knn_input(x: np.ndarray, name: str, min_rows: int = 1) -> np.ndarray:
    """Features as float32 (plenty for distances between ~20-norm vectors, and twice as fast)."""
    return np.ascontiguousarray(_as_features(x, name, min_rows), dtype=np.float32)


def _step(n_cols: int) -> int:
    return max(1, _CHUNK_ELEMS // max(n_cols, 1))


def knn_radii_multi(x: np.ndarray, ks: tuple[int, ...] | list[int]) -> dict[int, np.ndarray]:
    """Like :func:`knn_radii` for several k at once (one pass over the distance matrix)."""
    x = _knn_input(x, "features")
    ks = sorted(set(int(k) for k in ks))
    if x.shape[0] < ks[-1] + 1:
        raise ConfigError(f"k-NN radius with k={ks[-1]} needs at least {ks[-1] + 1} feature rows, got {x.shape[0]}")
    out = {k: np.empty(x.shape[0]) for k in ks}
    step = _step(x.shape[0])
    for i in range(0, x.shape[0], step):
        d = np.partition(pairwise_sq_dists(x[i : i + step], x), ks, axis=1)  # [c, N]; self sits at index 0
        for k in ks:
            out[k][i : i + step] = d[:, k]  # index k = the k-th nearest *other* row
    return {k: np.sqrt(v) for k, v in out.items()}


def knn_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance [N] from each row of x [N, F] to its k-th nearest other row (itself excluded).

    Raises:
        ConfigError: fewer than k + 1 rows.
    """
    return knn_radii_multi(x, (k,))[k]


def _inside_and_nearest(query: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per query row: how many balls B(centre_i, radius_i) contain it (int [Q]), and per centre:
    whether its ball contains any query row (bool [M])."""
    counts = np.zeros(query.shape[0], dtype=np.int64)
    covered = np.zeros(centres.shape[0], dtype=bool)
    r2 = (radii**2).astype(np.float32)[None, :]
    step = _step(centres.shape[0])
    for i in range(0, query.shape[0], step):
        inside = pairwise_sq_dists(query[i : i + step], centres) <= r2  # [c, M]
        counts[i : i + step] = inside.sum(axis=1)
        covered |= inside.any(axis=0)
    return counts, covered


def precision_recall(
    real: np.ndarray, fake: np.ndarray, k: int = 3, real_radii: np.ndarray | None = None
) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN manifolds.

    precision: share of fake rows inside some real row's k-NN ball (fidelity).
    recall: share of real rows inside some fake row's k-NN ball (diversity).
    ``real_radii`` (= ``knn_radii(real, k)``) may be passed to reuse it across calls.
    """
    real, fake = _knn_input(real, "real", k + 1), _knn_input(fake, "fake", k + 1)
    _check_dims(real, fake)
    radii = knn_radii(real, k) if real_radii is None else real_radii
    in_real, _ = _inside_and_nearest(fake, real, radii)  # per fake row: real balls holding it
    in_fake, _ = _inside_and_nearest(real, fake, knn_radii(fake, k))  # per real row: fake balls holding it
    return float((in_real > 0).mean()), float((in_fake > 0).mean())


def density_coverage(
    real: np.ndarray, fake: np.ndarray, k: int = 5, real_radii: np.ndarray | None = None
) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020) with k-NN balls around the real rows only.

    density: mean number of real balls containing a fake row, divided by k (~1 for matching sets;
    can exceed 1 when fakes crowd dense real regions). coverage: share of real rows whose ball holds
    at least one fake row. ``real_radii`` (= ``knn_radii(real, k)``) may be passed to reuse it.
    """
    real, fake = _knn_input(real, "real", k + 1), _knn_input(fake, "fake", 1)
    _check_dims(real, fake)
    radii = knn_radii(real, k) if real_radii is None else real_radii
    counts, covered = _inside_and_nearest(fake, real, radii)
    return float(counts.sum() / (k * fake.shape[0])), float(covered.mean())


def nearest_neighbors(query: np.ndarray, ref: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest ref rows of each query row.

    Returns:
        (indices int64 [Q, k], distances float64 [Q, k]), nearest first.
    """
    query, ref = _knn_input(query, "query"), _knn_input(ref, "ref", k)
    _check_dims(query, ref)
    idx = np.empty((query.shape[0], k), dtype=np.int64)
    dist = np.empty((query.shape[0], k))
    step = _step(ref.shape[0])
    for i in range(0, query.shape[0], step):
        d = pairwise_sq_dists(query[i : i + step], ref)  # [c, M]
        part = np.argpartition(d, k - 1, axis=1)[:, :k] if k < ref.shape[0] else np.tile(np.arange(k), (len(d), 1))
        pd = np.take_along_axis(d, part, axis=1)
        order = np.argsort(pd, axis=1, kind="stable")
        idx[i : i + step] = np.take_along_axis(part, order, axis=1)
        dist[i : i + step] = np.sqrt(np.take_along_axis(pd, order, axis=1))
    return idx, dist
