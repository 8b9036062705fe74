r"""The partition function Z(x), and why computing it is the obstacle (chapter 2).

The optimal policy of the KL-regularized objective (Rafailov et al. 2023, arXiv 2305.18290, Eq. 4) is

.. math:: \pi^*(y|x) = \pi_{ref}(y|x) \exp(r(x,y)/\beta) / Z(x), \qquad
          Z(x) = \sum_y \pi_{ref}(y|x) \exp(r(x,y)/\beta).

On the small bandit (:mod:`dpo_teach.bandit`) the sum is exact. For a language model, ``y`` ranges
over every token sequence: :func:`log10_num_sequences` counts them. The obvious way out is Monte
Carlo, because the sum is an expectation under the reference policy,

.. math:: Z(x) = E_{y \sim \pi_{ref}(\cdot|x)}[\exp(r(x,y)/\beta)],

estimated by the mean of ``exp(r/beta)`` over samples. This module implements that estimator
(:func:`mc_log_partition`), its exact one-sample relative standard deviation
(:func:`relative_std_one_sample`) and a measurement of its error against the number of samples
(:func:`mc_relative_errors`). For small beta the summand is heavy-tailed and the estimate converges
slowly: that is the chapter's point. All computations are in log space, so tiny beta does not overflow.
"""
from __future__ import annotations

import math

import numpy as np

from .bandit import check_same_shape, check_table, check_beta, check_policy, log_partition

__all__ = [
    "log10_num_sequences", "sample_responses", "mc_log_partition", "relative_std_one_sample",
    "mc_relative_errors",
]


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _problem(ref_probs, reward, beta):
    ref, r, b = check_policy("ref_probs", ref_probs), check_table("reward", reward), check_beta(beta)
    check_same_shape(ref_probs=ref, reward=r)
    return ref, r, b


def log10_num_sequences(vocab_size, length):
    """log10 of the number of token sequences of exactly ``length`` tokens: log10(V^T) = T log10 V."""
    return _positive_int("length", length) * math.log10(_positive_int("vocab_size", vocab_size))


def sample_responses(ref_probs, n_samples, rng):
    r"""Draw ``n_samples`` responses per prompt from :math:`\pi_{ref}(\cdot|x)`. Shape: (X, n_samples), int64.

    ``rng`` is a ``numpy.random.Generator`` (pass a seeded one); inverse-CDF sampling, row by row.
    """
    ref = check_policy("ref_probs", ref_probs)
    n = _positive_int("n_samples", n_samples)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    cdf = np.cumsum(ref, axis=1)  # (X, Y)
    u = rng.random((ref.shape[0], n))  # (X, n)
    out = np.stack([np.searchsorted(c, row, side="right") for c, row in zip(cdf, u)])
    return np.minimum(out, ref.shape[1] - 1).astype(np.int64)  # guard against cdf[-1] < 1 by rounding


def mc_log_partition(ref_probs, reward, beta, n_samples, *, seed=0):
    r"""log of the plain Monte Carlo estimate :math:`\hat Z(x) = \frac1n \sum_i \exp(r(x, y_i)/\beta)`,
    :math:`y_i \sim \pi_{ref}(\cdot|x)`. Shape: (X,).

    :math:`\hat Z` is unbiased for Z; its log is not (Jensen), which is why tests compare exp of it.
    """
    ref, r, b = _problem(ref_probs, reward, beta)
    ys = sample_responses(ref, n_samples, np.random.default_rng(seed))  # (X, n)
    a = np.take_along_axis(r, ys, axis=1) / b  # (X, n): log of each summand
    m = a.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(a - m).mean(axis=1, keepdims=True)))[:, 0]  # log-mean-exp


def relative_std_one_sample(ref_probs, reward, beta):
    r"""Exact standard deviation of one summand :math:`\exp(r/\beta)`, divided by Z. Shape: (X,).

    Since :math:`E[\exp(2r/\beta)] = Z_{\beta/2}` (the partition function at half the beta),
    :math:`\mathrm{Var}/Z^2 = Z_{\beta/2}/Z_\beta^2 - 1`. The relative root-mean-square error of the
    n-sample estimate is this number divided by :math:`\sqrt n`.
    """
    ref, r, b = _problem(ref_probs, reward, beta)
    log_ratio = log_partition(ref, r, b / 2) - 2 * log_partition(ref, r, b)  # log(Z_{b/2} / Z_b^2)
    return np.sqrt(np.maximum(np.expm1(log_ratio), 0.0))  # clip rounding below 0 (deterministic r)


def mc_relative_errors(ref_probs, reward, betas, sample_sizes, *, repeats=100, seed=0):
    r"""Signed relative errors :math:`\hat Z_n / Z - 1` of the Monte Carlo estimate. Shape: (B, repeats, X, S).

    ``betas`` is a 1-D sequence of B values; ``sample_sizes`` S strictly increasing positive ints.
    For each repeat, one stream of ``max(sample_sizes)`` responses is drawn per prompt from a
    generator seeded with ``seed``, and the running estimate is read off after each sample size (so
    errors at different n in one repeat are correlated; across repeats they are independent). Every
    beta sees the same responses, so the curves differ only through the summand ``exp(r/beta)``.
    """
    ref = check_policy("ref_probs", ref_probs)
    r = check_table("reward", reward)
    check_same_shape(ref_probs=ref, reward=r)
    if np.ndim(betas) != 1 or len(betas) == 0:
        raise ValueError(f"betas must be a non-empty 1-D sequence of numbers > 0, got {betas!r}")
    bs = np.array([check_beta(b) for b in betas])  # (B,)
    sizes = np.asarray(sample_sizes)
    if sizes.ndim != 1 or sizes.size == 0 or not np.issubdtype(sizes.dtype, np.integer) or sizes.min() < 1:
        raise ValueError(f"sample_sizes must be a 1-D array of positive ints, got {sample_sizes!r}")
    if np.any(np.diff(sizes) <= 0):
        raise ValueError(f"sample_sizes must be strictly increasing, got {sizes.tolist()}")
    repeats = _positive_int("repeats", repeats)
    rng = np.random.default_rng(seed)
    log_z = np.stack([log_partition(ref, r, b) for b in bs])[:, :, None]  # (B, X, 1)
    a_all = r[None] / bs[:, None, None]  # (B, X, Y): log of each summand
    shift = a_all.max(axis=2, keepdims=True)  # (B, X, 1): exp(a - shift) <= 1, no overflow
    out = np.empty((bs.size, repeats, ref.shape[0], sizes.size))
    for k in range(repeats):
        ys = sample_responses(ref, int(sizes[-1]), rng)  # (X, n_max)
        for j in range(bs.size):
            a = np.take_along_axis(a_all[j], ys, axis=1) - shift[j]  # (X, n_max)
            running = np.cumsum(np.exp(a), axis=1)[:, sizes - 1] / sizes  # (X, S): mean of the first n
            with np.errstate(divide="ignore"):
                out[j, k] = np.exp(np.log(running) + shift[j] - log_z[j]) - 1.0  # Z_hat / Z - 1
    return out
