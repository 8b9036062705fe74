"""Tests for dpo_teach.rankings: exact probabilities against a brute-force product, the sampler
against those probabilities with a chi-square test that is shown to reject wrong samplers."""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from dpo_teach.rankings import (
    all_rankings,
    one_pair_from_ranking,
    pairs_from_rankings,
    ranking_log_prob,
    sample_rankings,
)

SCORES = np.array([1.0, 0.4, 0.0, -0.6])  # K = 4; the rarest ranking has expected count ~130 in 20000
N_SAMPLES = 20_000


def _brute_force_prob(scores, ranking):
    """Eq. 18 written as a product of 'pick the next best among the rest' factors."""
    p, remaining = 1.0, list(ranking)
    for item in ranking:
        p *= math.exp(scores[item]) / sum(math.exp(scores[j]) for j in remaining)
        remaining.remove(item)
    return p


def _counts(rankings, K=4):
    """How often each of the K! rankings (in all_rankings order) occurs."""
    table = all_rankings(K)  # (K!, K)
    idx = (rankings[:, None, :] == table[None]).all(-1).int().argmax(1)  # (n,)
    assert (table[idx] == rankings).all()
    return np.bincount(idx.numpy(), minlength=len(table))


def _chisquare_pvalue(rankings):
    probs = np.exp(ranking_log_prob(SCORES, all_rankings(4)))
    expected = probs / probs.sum() * len(rankings)
    return chisquare(_counts(rankings), expected).pvalue


# ----------------------------------------------------------------------------- exact probabilities


def test_all_rankings_is_every_permutation_once():
    table = all_rankings(4)
    assert table.shape == (24, 4) and table.dtype == torch.int64
    assert {tuple(r) for r in table.tolist()} == set(itertools.permutations(range(4)))
    assert table[0].tolist() == [0, 1, 2, 3] and table[-1].tolist() == [3, 2, 1, 0]


def test_exact_probabilities_match_brute_force_and_sum_to_one():
    table = all_rankings(4)
    logps = ranking_log_prob(SCORES, table)
    assert logps.shape == (24,)
    brute = [_brute_force_prob(SCORES, r) for r in table.tolist()]
    np.testing.assert_allclose(np.exp(logps), brute, rtol=1e-12)
    assert np.exp(logps).sum() == pytest.approx(1.0, abs=1e-12)
    # the single-ranking form returns a float equal to the batched one; tensors work too
    single = ranking_log_prob(torch.tensor(SCORES), [2, 0, 3, 1])
    assert isinstance(single, float)
    assert single == pytest.approx(math.log(_brute_force_prob(SCORES, [2, 0, 3, 1])), rel=1e-12)


def test_two_items_is_bradley_terry():
    s = [0.3, -1.2]
    assert math.exp(ranking_log_prob(s, [0, 1])) == pytest.approx(1 / (1 + math.exp(-1.5)), rel=1e-12)


def test_log_prob_is_stable_for_large_scores():
    logp = ranking_log_prob([1e4, 0.0, -1e4], [2, 1, 0])  # worst first: astronomically unlikely
    assert logp == pytest.approx(-3e4, rel=1e-9)
    assert ranking_log_prob([1e4, 0.0, -1e4], [0, 1, 2]) == pytest.approx(0.0, abs=1e-12)


# ----------------------------------------------------------------------------- sampling


def test_sampler_passes_chisquare_against_exact_probabilities():
    g = torch.Generator().manual_seed(0)
    rankings = sample_rankings(SCORES, N_SAMPLES, g)
    assert rankings.shape == (N_SAMPLES, 4) and rankings.dtype == torch.int64
    assert _chisquare_pvalue(rankings) > 1e-3


def test_chisquare_rejects_wrong_samplers():
    g = torch.Generator().manual_seed(0)
    reversed_scores = sample_rankings(SCORES[::-1].copy(), N_SAMPLES, g)
    assert _chisquare_pvalue(reversed_scores) < 1e-6
    # a subtle bug: Gaussian noise of the same variance (Thurstone model), not Gumbel
    noise = math.pi / math.sqrt(6) * torch.randn(N_SAMPLES, 4, generator=g, dtype=torch.float64)
    thurstone = torch.argsort(torch.tensor(SCORES) + noise, dim=1, descending=True)
    assert _chisquare_pvalue(thurstone) < 1e-6


def test_sampler_is_reproducible_with_a_seed():
    a = sample_rankings(SCORES, 50, torch.Generator().manual_seed(3))
    b = sample_rankings(SCORES, 50, torch.Generator().manual_seed(3))
    c = sample_rankings(SCORES, 50, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sampler_with_one_score_row_per_ranking():
    # gaps of 100 make any other order have probability < e^-100: each row must come out sorted
    scores = torch.tensor([[0.0, 100.0, 200.0], [200.0, 0.0, 100.0], [100.0, 200.0, 0.0]])
    g = torch.Generator().manual_seed(5)
    out = sample_rankings(scores, None, g)
    assert out.tolist() == [[2, 1, 0], [0, 2, 1], [1, 0, 2]]
    assert torch.equal(sample_rankings(scores, 3, torch.Generator().manual_seed(5)), out)


# ----------------------------------------------------------------------------- pairs


def test_pairs_from_rankings_lists_every_ordered_pair():
    chosen, rejected = pairs_from_rankings(torch.tensor([[2, 0, 3, 1]]))
    assert chosen.shape == rejected.shape == (1, 6)
    assert list(zip(chosen[0].tolist(), rejected[0].tolist())) == [
        (2, 0), (2, 3), (2, 1), (0, 3), (0, 1), (3, 1),
    ]


def test_one_pair_puts_the_better_ranked_item_first_and_is_uniform():
    g = torch.Generator().manual_seed(6)
    rankings = sample_rankings(SCORES, 6000, g)
    chosen, rejected = one_pair_from_ranking(rankings, g)
    assert chosen.shape == rejected.shape == (6000,)
    position = torch.argsort(rankings, dim=1)  # position[n, item] = rank of item in ranking n
    pos_c = position.gather(1, chosen[:, None]).squeeze(1)
    pos_r = position.gather(1, rejected[:, None]).squeeze(1)
    assert (pos_c < pos_r).all()
    # the pair of positions (i, j) is uniform over the 6 possibilities
    counts = np.bincount((4 * pos_c + pos_r).numpy(), minlength=16)[[1, 2, 3, 6, 7, 11]]
    assert counts.sum() == 6000
    assert chisquare(counts).pvalue > 1e-3


# ----------------------------------------------------------------------------- errors


def test_bad_scores_are_rejected():
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match=r"K=1 items, expected K >= 2"):
        sample_rankings([0.5], 10, g)
    with pytest.raises(ValueError, match=r"finite.*nan"):
        sample_rankings([0.0, float("nan"), 1.0], 10, g)
    with pytest.raises(ValueError, match=r"finite.*inf"):
        ranking_log_prob([0.0, float("inf")], [0, 1])
    with pytest.raises(ValueError, match=r"expected \(K,\) or \(B, K\)"):
        sample_rankings(np.zeros((2, 2, 2)), 10, g)


@pytest.mark.parametrize("n", [0, -3, 2.5, None])
def test_bad_n_is_rejected(n):
    with pytest.raises(ValueError, match=rf"n={n!r} is invalid: expected a positive int"):
        sample_rankings(SCORES, n, torch.Generator())


def test_sampler_rejects_mismatched_n_and_numpy_generator():
    with pytest.raises(ValueError, match=r"n=5 does not match scores of shape \(3, 4\).*n=None or n=3"):
        sample_rankings(np.zeros((3, 4)), 5, torch.Generator())
    with pytest.raises(TypeError, match=r"torch.Generator.*got Generator"):
        sample_rankings(SCORES, 5, np.random.default_rng(0))


def test_bad_rankings_are_rejected():
    with pytest.raises(ValueError, match=r"permutation of 0..3.*\[0, 0, 2, 3\]"):
        ranking_log_prob(SCORES, [0, 0, 2, 3])
    with pytest.raises(ValueError, match=r"3 items per row, expected K = 4"):
        ranking_log_prob(SCORES, [0, 1, 2])
    with pytest.raises(ValueError, match=r"shape \(4,\), expected \(N, K\)"):
        pairs_from_rankings(torch.tensor([0, 1, 2, 3]))
    with pytest.raises(TypeError, match=r"integer item indices.*float"):
        one_pair_from_ranking(torch.tensor([[0.0, 1.0]]), torch.Generator())
    with pytest.raises(ValueError, match=r"1 items per row, expected K >= 2"):
        pairs_from_rankings(torch.zeros(3, 1, dtype=torch.int64))


@pytest.mark.parametrize("K", [1, 9, 2.0, True])
def test_all_rankings_rejects_bad_k(K):
    with pytest.raises(ValueError, match=rf"K={K!r} is invalid"):
        all_rankings(K)
