r"""A small discrete preference problem: prompts x in 1..X, responses y in 1..Y (chapters 1-4, 6).

Tables are NumPy float64 arrays of shape (X, Y): a reference policy ``ref_probs[x, y]`` =
:math:`\pi_{ref}(y|x)` and a reward ``reward[x, y]`` = :math:`r(x, y)`. Everything the theory talks
about can be computed exactly here, which is what makes the problem a good test bed:

- the partition function :math:`Z(x) = \sum_y \pi_{ref}(y|x) \exp(r(x,y)/\beta)` (Eq. 4),
- the optimal policy :math:`\pi^*(y|x) = \pi_{ref}(y|x) \exp(r(x,y)/\beta) / Z(x)` (Eq. 4),
- the objective :math:`E_{y\sim\pi}[r] - \beta\, KL(\pi \| \pi_{ref})` (Eq. 3), per prompt,
- Bradley-Terry preference pairs sampled from the reward (Eq. 1).

Prompts are weighted uniformly; functions return per-prompt values of shape (X,), so a caller
averages with ``.mean()``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "Problem", "make_problem", "log_partition", "partition_function", "optimal_policy",
    "kl_divergence", "expected_reward", "objective", "Pairs", "sample_preferences",
    "check_policy", "check_beta", "check_table", "check_same_shape",
]

_ATOL = 1e-9


# ------------------------------------------------------------ validation ---------------------

def check_beta(beta, name="beta"):
    """Return ``beta`` as a float, or raise ValueError unless it is finite and > 0."""
    try:
        b = float(beta)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {beta!r}") from None
    if not np.isfinite(b) or b <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {beta!r}")
    return b


def check_table(name, a):
    """Return ``a`` as a finite float64 (X, Y) table with Y >= 2, or raise ValueError naming it."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 2:
        raise ValueError(f"{name} must be a 2-D table of shape (X, Y) with Y >= 2, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains non-finite values (nan or inf)")
    return a


def check_policy(name, probs):
    """Return ``probs`` as float64 (X, Y) or raise ValueError naming ``name`` and the problem."""
    p = check_table(name, probs)
    if np.any(p < 0):
        raise ValueError(f"{name} has negative probabilities (min {p.min():.3g})")
    sums = p.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-6)
    if bad.size:
        raise ValueError(f"{name}: each row must sum to 1, row {bad[0]} sums to {sums[bad[0]]:.6g}")
    return p


def check_same_shape(**tables):
    """Raise ValueError listing the shapes unless all the named tables have the same shape."""
    shapes = {k: v.shape for k, v in tables.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"shape mismatch: {', '.join(f'{k} {s}' for k, s in shapes.items())}")


# ------------------------------------------------------------ the problem -------------------

@dataclass(frozen=True)
class Problem:
    """A reference policy and a reward table, both (X, Y)."""

    ref_probs: np.ndarray  # (X, Y), rows sum to 1
    reward: np.ndarray     # (X, Y), the true (hidden) reward

    @property
    def shape(self):
        return self.ref_probs.shape


def make_problem(n_prompts=4, n_responses=6, *, seed=0, reward_scale=1.0, ref_temperature=1.0):
    """A random problem: rewards ~ N(0, reward_scale^2), pi_ref = softmax(N(0,1) / ref_temperature)."""
    if int(n_prompts) < 1 or int(n_responses) < 2:
        raise ValueError(f"need n_prompts >= 1 and n_responses >= 2, got {n_prompts}, {n_responses}")
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n_prompts, n_responses)) / check_beta(ref_temperature, "ref_temperature")
    ref = np.exp(logits - logits.max(axis=1, keepdims=True))
    ref /= ref.sum(axis=1, keepdims=True)
    reward = reward_scale * rng.normal(size=(n_prompts, n_responses))
    return Problem(ref, reward)


# ------------------------------------------------------------ closed forms ------------------

def log_partition(ref_probs, reward, beta):
    r"""log Z(x) = log sum_y pi_ref(y|x) exp(r(x,y)/beta), by log-sum-exp. Shape: (X,)."""
    ref, r, b = check_policy("ref_probs", ref_probs), check_table("reward", reward), check_beta(beta)
    check_same_shape(ref_probs=ref, reward=r)
    with np.errstate(divide="ignore"):
        a = np.log(ref) + r / b  # (X, Y); log 0 = -inf for responses pi_ref never gives
    m = a.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=1, keepdims=True)))[:, 0]


def partition_function(ref_probs, reward, beta):
    """Z(x) (Eq. 4). Shape: (X,). May overflow to inf for tiny beta: prefer log_partition."""
    return np.exp(log_partition(ref_probs, reward, beta))


def optimal_policy(ref_probs, reward, beta):
    r"""pi*(y|x) = pi_ref(y|x) exp(r(x,y)/beta) / Z(x) (Eq. 4), computed in log space. Shape: (X, Y)."""
    ref, r, b = check_policy("ref_probs", ref_probs), check_table("reward", reward), check_beta(beta)
    check_same_shape(ref_probs=ref, reward=r)
    with np.errstate(divide="ignore"):
        logits = np.log(ref) + r / b  # (X, Y)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def kl_divergence(p, q):
    r"""KL(p || q) = sum_y p log(p/q) per row, with 0 log 0 = 0. Shape: (X,)."""
    p, q = check_policy("p", p), check_policy("q", q)
    check_same_shape(p=p, q=q)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)
    return terms.sum(axis=1)


def expected_reward(policy, reward):
    """E_{y ~ pi(.|x)}[r(x, y)]. Shape: (X,)."""
    p, r = check_policy("policy", policy), check_table("reward", reward)
    check_same_shape(policy=p, reward=r)
    return (p * r).sum(axis=1)


def objective(policy, ref_probs, reward, beta):
    r"""E_pi[r] - beta KL(pi || pi_ref) (Eq. 3), per prompt. Shape: (X,)."""
    return expected_reward(policy, reward) - check_beta(beta) * kl_divergence(policy, ref_probs)


# ------------------------------------------------------------ preferences -------------------

@dataclass(frozen=True)
class Pairs:
    """Preference pairs: for each i, response ``chosen[i]`` was preferred to ``rejected[i]``."""

    prompt: np.ndarray    # (N,) int64
    chosen: np.ndarray    # (N,) int64
    rejected: np.ndarray  # (N,) int64

    def __len__(self):
        return len(self.prompt)


def sample_preferences(ref_probs, reward, n, *, seed=0):
    r"""Sample ``n`` Bradley-Terry pairs: x uniform, y1 != y2 drawn from pi_ref(.|x) (as in the paper,
    responses come from the reference model), and y1 preferred with probability sigma(r(x,y1) - r(x,y2)).
    """
    ref, r = check_policy("ref_probs", ref_probs), check_table("reward", reward)
    check_same_shape(ref_probs=ref, reward=r)
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if np.any((ref > 0).sum(axis=1) < 2):
        raise ValueError("ref_probs: every prompt needs at least two responses with probability > 0")
    rng = np.random.default_rng(seed)
    X, Y = ref.shape
    prompt = rng.integers(0, X, size=n)
    cdf = np.cumsum(ref, axis=1)
    y1 = _draw(cdf[prompt], rng)
    y2 = _draw(cdf[prompt], rng)
    while np.any(same := y1 == y2):  # redraw ties: an equal pair carries no preference
        y2[same] = _draw(cdf[prompt[same]], rng)
    p1 = 1.0 / (1.0 + np.exp(-(r[prompt, y1] - r[prompt, y2])))  # Eq. 1
    first = rng.random(n) < p1
    chosen, rejected = np.where(first, y1, y2), np.where(first, y2, y1)
    return Pairs(prompt.astype(np.int64), chosen.astype(np.int64), rejected.astype(np.int64))


def _draw(cdf_rows, rng):
    u = rng.random(len(cdf_rows))[:, None]
    return np.minimum((u > cdf_rows).sum(axis=1), cdf_rows.shape[1] - 1)
