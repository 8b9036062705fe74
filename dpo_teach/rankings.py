r"""The Plackett-Luce model of rankings: exact probabilities, sampling, and pairs from rankings.

Taught in chapter 4. Under Plackett-Luce (Eq. 18 of Rafailov et al. 2023, arXiv 2305.18290),
a ranking :math:`\tau` of :math:`K` items with scores :math:`s` is built best-first, each time
picking one of the remaining items with probability proportional to :math:`\exp(s)`:

.. math:: p(\tau \mid s) = \prod_{k=1}^{K} \frac{\exp(s_{\tau(k)})}{\sum_{j=k}^{K} \exp(s_{\tau(j)})} .

For :math:`K = 2` this is the Bradley-Terry model. A ranking is a sequence of item indices,
best first: ``[2, 0, 1]`` means item 2 is best and item 1 is worst. Rankings are returned as
int64 torch tensors; randomness always comes from a ``torch.Generator`` (``None`` means torch's
global generator, reproducible only after ``torch.manual_seed``).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

__all__ = [
    "all_rankings",
    "one_pair_from_ranking",
    "pairs_from_rankings",
    "ranking_log_prob",
    "sample_rankings",
]

_MAX_K_ENUMERATE = 8  # 8! = 40320 rankings; more would not fit a teaching notebook


def _as_scores(scores: object) -> torch.Tensor:
    """Scores as a float64 tensor (1-D or 2-D), checked: K >= 2, all finite."""
    if isinstance(scores, torch.Tensor):
        s = scores.detach().to(torch.float64)
    else:
        s = torch.as_tensor(np.asarray(scores, dtype=np.float64))
    if s.dim() not in (1, 2):
        raise ValueError(f"scores has shape {tuple(s.shape)}, expected (K,) or (B, K)")
    if s.shape[-1] < 2:
        raise ValueError(f"scores has K={s.shape[-1]} items, expected K >= 2 (a ranking needs two items)")
    if not bool(torch.isfinite(s).all()):
        raise ValueError(f"scores must all be finite, got {s.tolist()}")
    return s


def _as_rankings(rankings: object, K: int | None = None) -> torch.Tensor:
    """Rankings as an int64 tensor (N, K), each row checked to be a permutation of 0..K-1."""
    r = torch.as_tensor(np.asarray(rankings)) if not isinstance(rankings, torch.Tensor) else rankings
    if r.is_floating_point() or r.dtype == torch.bool:
        raise TypeError(f"rankings must hold integer item indices, got dtype {r.dtype}")
    r = r.to(torch.int64)
    if r.dim() != 2:
        raise ValueError(
            f"rankings has shape {tuple(r.shape)}, expected (N, K); for one ranking use rankings[None]"
        )
    if r.shape[1] < 2 or (K is not None and r.shape[1] != K):
        expected = "K >= 2" if K is None else f"K = {K} (the number of scores)"
        raise ValueError(f"rankings has {r.shape[1]} items per row, expected {expected}")
    is_perm = (r.sort(dim=1).values == torch.arange(r.shape[1])).all(dim=1)  # (N,)
    if not bool(is_perm.all()):
        bad = r[~is_perm][0].tolist()
        raise ValueError(
            f"each ranking must be a permutation of 0..{r.shape[1] - 1} (item indices, best first), got {bad}"
        )
    return r


def ranking_log_prob(scores: object, ranking: object) -> float | np.ndarray:
    r"""Exact Plackett-Luce log-probability of a ranking (Eq. 18), in float64.

    .. math:: \log p(\tau \mid s) = \sum_{k=1}^{K} \Big( s_{\tau(k)} - \log \sum_{j=k}^{K} \exp(s_{\tau(j)}) \Big)

    Args:
        scores: one real score per item (tensor, array or list). Shape: (K,)
        ranking: item indices, best first, a permutation of ``0..K-1``. Shape: (K,) or (N, K)

    Returns:
        A float for one ranking; a float64 numpy array of Shape: (N,) for N rankings.
    """
    s = _as_scores(scores)
    if s.dim() != 1:
        raise ValueError(f"scores has shape {tuple(s.shape)}, expected (K,): one score per item")
    r = torch.as_tensor(np.asarray(ranking)) if not isinstance(ranking, torch.Tensor) else ranking
    single = r.dim() == 1
    r = _as_rankings(r[None] if single else r, K=s.shape[0])  # (N, K)
    ordered = s.numpy()[r.numpy()]  # (N, K)  scores in ranked order
    # tail[:, k] = log sum_{j >= k} exp(ordered_j), accumulated from the right (stable)
    tail = np.logaddexp.accumulate(ordered[:, ::-1], axis=1)[:, ::-1]  # (N, K)
    logp = (ordered - tail).sum(axis=1)  # Eq. 18, in log space  # (N,)
    return float(logp[0]) if single else logp


def sample_rankings(
    scores: object,
    n: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Draw rankings from Plackett-Luce by sorting Gumbel-perturbed scores.

    If :math:`g_i` are i.i.d. standard Gumbel, the order of :math:`s_i + g_i` from largest to
    smallest is distributed exactly as Plackett-Luce with scores :math:`s` (the Gumbel-max trick
    applied to every position; Yellott 1977).

    Args:
        scores: Shape: (K,) for ``n`` rankings from the same scores, or Shape: (B, K) for one
            ranking per row (then ``n`` must be ``None`` or equal to B).
        n: number of rankings when ``scores`` is 1-D; a positive int.
        generator: a seeded ``torch.Generator`` for reproducible draws; ``None`` uses torch's
            global generator.

    Returns:
        int64 tensor of item indices, best first. Shape: (n, K) or (B, K)
    """
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator (e.g. torch.Generator().manual_seed(0)) or None, "
            f"got {type(generator).__name__}"
        )
    s = _as_scores(scores)
    if s.dim() == 1:
        if n is None or isinstance(n, bool) or int(n) != n or n <= 0:
            raise ValueError(f"n={n!r} is invalid: expected a positive int (the number of rankings)")
        s = s.expand(int(n), -1)  # (n, K)
    elif n is not None and n != s.shape[0]:
        raise ValueError(
            f"n={n!r} does not match scores of shape {tuple(s.shape)}: with 2-D scores each row "
            f"gives one ranking, so pass n=None or n={s.shape[0]}"
        )
    u = torch.rand(s.shape, dtype=torch.float64, generator=generator)  # (n, K) uniform in [0, 1)
    u = u.clamp_min(torch.finfo(torch.float64).tiny)  # avoid log(0)
    gumbel = -torch.log(-torch.log(u))  # (n, K)  standard Gumbel noise
    return torch.argsort(s + gumbel, dim=-1, descending=True)  # (n, K)


def all_rankings(K: int) -> torch.Tensor:
    """All K! rankings of K items, in lexicographic order.

    Args:
        K: number of items, 2 <= K <= 8.

    Returns:
        int64 tensor. Shape: (K!, K)
    """
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or not 2 <= K <= _MAX_K_ENUMERATE:
        raise ValueError(f"K={K!r} is invalid: expected an int with 2 <= K <= {_MAX_K_ENUMERATE}")
    perms = list(itertools.permutations(range(int(K))))  # K! tuples, lexicographic
    return torch.tensor(perms, dtype=torch.int64)


def pairs_from_rankings(rankings: object) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (chosen, rejected) pair implied by each ranking: K(K-1)/2 pairs per ranking.

    Pair ``m`` compares positions ``i < j`` (in the order of ``torch.triu_indices(K, K, 1)``:
    (0, 1), (0, 2), ..., (K-2, K-1)); the chosen item is the better-ranked one, ``ranking[i]``.

    Args:
        rankings: item indices, best first. Shape: (N, K)

    Returns:
        ``(chosen, rejected)`` item indices, each int64 of Shape: (N, K(K-1)/2)
    """
    r = _as_rankings(rankings)  # (N, K)
    i, j = torch.triu_indices(r.shape[1], r.shape[1], offset=1)  # (P,), (P,)  positions, i < j
    return r[:, i], r[:, j]


def one_pair_from_ranking(
    rankings: object, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One (chosen, rejected) pair per ranking, uniform over the K(K-1)/2 pairs of positions.

    This is what a pairwise dataset keeps of a ranking: chapter 4 compares training on full
    rankings with training on these pairs. The chosen item is always the better-ranked one.

    Args:
        rankings: item indices, best first. Shape: (N, K)
        generator: a seeded ``torch.Generator``; ``None`` uses torch's global generator.

    Returns:
        ``(chosen, rejected)`` item indices, each int64 of Shape: (N,)
    """
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    chosen_all, rejected_all = pairs_from_rankings(rankings)  # (N, P), (N, P)
    N, P = chosen_all.shape
    pick = torch.randint(P, (N, 1), generator=generator)  # (N, 1)  uniform pair index
    return chosen_all.gather(1, pick).squeeze(1), rejected_all.gather(1, pick).squeeze(1)
