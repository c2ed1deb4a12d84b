"""The metric math on known distributions: FD, KID, precision/recall, density/coverage, k-NN."""

from __future__ import annotations

import numpy as np
import pytest

from synthgen.errors import ConfigError
from synthgen.evaluate import features as F


def gaussian(n: int, dim: int = 8, mean: float = 0.0, scale: float = 1.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, scale, size=(n, dim))


def test_frechet_from_stats_matches_closed_form_for_diagonal_gaussians():
    # For diagonal covariances FD = |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2.
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([3.0, 1.0, -2.0])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert F.frechet_from_stats(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_frechet_from_stats_handles_non_commuting_covariances():
    # Rotated covariance: the trace term needs the real matrix square root, not elementwise roots.
    rot = np.array([[np.cos(0.7), -np.sin(0.7)], [np.sin(0.7), np.cos(0.7)]])
    c1, c2 = np.diag([4.0, 1.0]), rot @ np.diag([9.0, 0.5]) @ rot.T
    vals = np.linalg.eigvals(c1 @ c2)
    expected = np.trace(c1) + np.trace(c2) - 2 * np.sqrt(vals).real.sum()
    assert F.frechet_from_stats(np.zeros(2), c1, np.zeros(2), c2) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_of_identical_sets_is_zero_and_grows_with_the_mean_shift():
    x = gaussian(2000)
    assert F.frechet_distance(x, x) < 1e-8
    shifted = F.frechet_distance(x, x + 3.0)  # same covariance, mean moved by 3 in each of 8 dims
    assert shifted == pytest.approx(8 * 9.0, rel=1e-6)
    assert F.frechet_distance(x, gaussian(2000, seed=1)) < 0.1  # two samples of one distribution


def test_kid_matches_brute_force_unbiased_mmd_on_one_subset():
    x, y = gaussian(30, dim=4, seed=0), gaussian(30, dim=4, mean=0.5, seed=1)
    k = lambda a, b: (a @ b / 4 + 1) ** 3  # noqa: E731
    m = 30
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    mean, std = F.kernel_inception_distance(x, y, num_subsets=1, subset_size=m)
    assert mean == pytest.approx(kxx + kyy - 2 * kxy, rel=1e-9)
    assert std == 0.0


def test_kid_is_near_zero_for_one_distribution_and_positive_for_a_shift():
    a, b = gaussian(1500, seed=0), gaussian(1500, seed=1)
    same, _ = F.kernel_inception_distance(a, b, num_subsets=20, subset_size=500)
    moved, std = F.kernel_inception_distance(a, gaussian(1500, mean=1.0, seed=2), num_subsets=20, subset_size=500)
    assert abs(same) < 0.05
    assert moved > 1.0 and moved > 10 * abs(same) and std > 0


def test_knn_radii_and_nearest_neighbors_match_brute_force():
    x = gaussian(60, dim=5, seed=3)
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    expected = np.sort(d, axis=1)[:, 3]  # column 0 is the point itself
    np.testing.assert_allclose(F.knn_radii(x, 3), expected, rtol=1e-5, atol=1e-5)
    q = gaussian(7, dim=5, seed=4)
    dq = np.sqrt(((q[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    idx, dist = F.nearest_neighbors(q, x, 4)
    np.testing.assert_array_equal(idx, np.argsort(dq, axis=1)[:, :4])
    np.testing.assert_allclose(dist, np.sort(dq, axis=1)[:, :4], rtol=1e-5)


def test_precision_recall_identical_sets_give_one_and_disjoint_sets_give_zero():
    x = gaussian(500)
    assert F.precision_recall(x, x, k=3) == (1.0, 1.0)
    assert F.precision_recall(x, x + 100.0, k=3) == (0.0, 0.0)


def test_precision_recall_of_a_collapsed_generator_keeps_precision_and_loses_recall():
    # Real data has two far-apart modes; the "generator" reproduces only one of them.
    real = np.concatenate([gaussian(400, seed=0), gaussian(400, seed=1) + 50.0])
    faithful = np.concatenate([gaussian(400, seed=2), gaussian(400, seed=3) + 50.0])
    p_full, r_full = F.precision_recall(real, faithful, k=3)
    precision, recall = F.precision_recall(real, gaussian(800, seed=2), k=3)
    assert p_full > 0.8 and r_full > 0.8
    assert precision == pytest.approx(p_full, abs=0.05)
    assert recall == pytest.approx(r_full / 2, abs=0.05)


def test_density_coverage_identical_disjoint_and_collapsed():
    x = gaussian(600)
    density, coverage = F.density_coverage(x, x, k=5)
    assert coverage == 1.0 and 0.9 < density < 1.5
    assert F.density_coverage(x, x + 100.0, k=5) == (0.0, 0.0)
    real = np.concatenate([gaussian(400, seed=0), gaussian(400, seed=1) + 50.0])
    _, half = F.density_coverage(real, gaussian(400, seed=2), k=5)
    assert 0.4 < half < 0.6


def test_bad_feature_shapes_raise_config_errors():
    with pytest.raises(ConfigError, match="feature sizes differ"):
        F.frechet_distance(gaussian(10, dim=3), gaussian(10, dim=4))
    with pytest.raises(ConfigError, match="at least 4 feature rows"):
        F.knn_radii(gaussian(3), 3)
    with pytest.raises(ConfigError, match=r"\[N, F\]"):
        F.precision_recall(np.zeros(10), np.zeros(10))
