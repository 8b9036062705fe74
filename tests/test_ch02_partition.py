"""Chapter 2's Monte Carlo estimator of the partition function Z(x) (dpo_teach.partition)."""
import math

import numpy as np
import pytest

from dpo_teach import bandit, partition


def _brute_force_z(ref, reward, beta):
    """Z(x) by an explicit Python loop: the independent reference."""
    return np.array([sum(p * math.exp(r / beta) for p, r in zip(ref_row, r_row))
                     for ref_row, r_row in zip(ref, reward)])


def test_log10_num_sequences():
    assert partition.log10_num_sequences(50_000, 1) == pytest.approx(math.log10(50_000))
    assert partition.log10_num_sequences(2, 10) == pytest.approx(math.log10(1024))
    assert partition.log10_num_sequences(50_000, 100) == pytest.approx(469.897, abs=1e-3)
    for bad in [(0, 5), (50_000, 0), (50_000, 2.5), (True, 3), (-3, 2)]:
        with pytest.raises(ValueError, match="positive int"):
            partition.log10_num_sequences(*bad)


def test_sample_responses_follow_the_reference_policy():
    prob = bandit.make_problem(2, 5, seed=3)
    ys = partition.sample_responses(prob.ref_probs, 200_000, np.random.default_rng(0))
    assert ys.shape == (2, 200_000) and ys.dtype == np.int64
    freq = np.stack([np.bincount(row, minlength=5) / row.size for row in ys])
    se = np.sqrt(prob.ref_probs * (1 - prob.ref_probs) / 200_000)
    assert np.all(np.abs(freq - prob.ref_probs) < 5 * se + 1e-12)
    # a response with probability 0 is never drawn
    ref = np.array([[0.5, 0.0, 0.5]])
    assert 1 not in partition.sample_responses(ref, 10_000, np.random.default_rng(1))
    with pytest.raises(ValueError, match="n_samples"):
        partition.sample_responses(prob.ref_probs, 0, np.random.default_rng(0))
    with pytest.raises(TypeError, match="Generator"):
        partition.sample_responses(prob.ref_probs, 10, 0)


def test_mc_estimate_is_unbiased_for_z():
    prob = bandit.make_problem(3, 6, seed=1)
    beta, n = 0.7, 200
    z = _brute_force_z(prob.ref_probs, prob.reward, beta)
    estimates = np.exp([partition.mc_log_partition(prob.ref_probs, prob.reward, beta, n, seed=s)
                        for s in range(400)])  # (400, 3): Z_hat is unbiased, its log is not
    sd = partition.relative_std_one_sample(prob.ref_probs, prob.reward, beta) * z / math.sqrt(n * 400)
    assert np.all(np.abs(estimates.mean(axis=0) - z) < 4 * sd)


def test_relative_std_matches_the_variance_by_brute_force():
    prob = bandit.make_problem(2, 7, seed=4)
    for beta in (0.3, 1.0, 4.0):
        z = _brute_force_z(prob.ref_probs, prob.reward, beta)
        var = np.array([sum(p * (math.exp(r / beta) - zx) ** 2 for p, r in zip(pr, rr))
                        for pr, rr, zx in zip(prob.ref_probs, prob.reward, z)])
        got = partition.relative_std_one_sample(prob.ref_probs, prob.reward, beta)
        assert got == pytest.approx(np.sqrt(var) / z, rel=1e-9)
    # a constant reward makes exp(r/beta) constant: zero variance
    flat = partition.relative_std_one_sample(prob.ref_probs, np.ones_like(prob.reward), 0.5)
    assert np.allclose(flat, 0, atol=1e-7)
    # tiny beta: finite (log space), no overflow
    assert np.all(np.isfinite(partition.relative_std_one_sample(prob.ref_probs, 100 * prob.reward, 1e-3)))


def test_error_shrinks_like_one_over_sqrt_n_and_small_beta_is_harder():
    prob = bandit.make_problem(1, 50, seed=0)
    sizes = np.array([10, 100, 1000, 10_000])
    errors = partition.mc_relative_errors(prob.ref_probs, prob.reward, [1.0, 0.2], sizes, repeats=200, seed=0)
    assert errors.shape == (2, 200, 1, 4)
    rms = np.sqrt((errors ** 2).mean(axis=(1, 2)))  # (2, 4)
    assert np.all(np.diff(rms[0]) < 0)  # more samples, smaller error
    theory = partition.relative_std_one_sample(prob.ref_probs, prob.reward, 1.0)[0] / np.sqrt(sizes)
    assert rms[0] == pytest.approx(theory, rel=0.25)  # RMS error = sigma_1 / sqrt(n)
    assert np.all(rms[1] > rms[0])  # small beta: heavier tails, larger error at every n
    # the same seed gives the same samples: rerunning is reproducible
    again = partition.mc_relative_errors(prob.ref_probs, prob.reward, [1.0, 0.2], sizes, repeats=200, seed=0)
    assert np.array_equal(errors, again)


def test_mc_relative_errors_at_n_equal_y_matches_an_explicit_estimate():
    prob = bandit.make_problem(2, 4, seed=5)
    sizes = np.array([1, 3, 8])
    err = partition.mc_relative_errors(prob.ref_probs, prob.reward, [0.5], sizes, repeats=1, seed=7)
    ys = partition.sample_responses(prob.ref_probs, 8, np.random.default_rng(7))  # the same stream
    z = _brute_force_z(prob.ref_probs, prob.reward, 0.5)
    for j, n in enumerate(sizes):
        z_hat = np.array([np.mean(np.exp(prob.reward[x, ys[x, :n]] / 0.5)) for x in range(2)])
        assert err[0, 0, :, j] == pytest.approx(z_hat / z - 1, rel=1e-9, abs=1e-12)


def test_bad_inputs_name_the_bad_value():
    prob = bandit.make_problem(1, 4, seed=0)
    ref, rew = prob.ref_probs, prob.reward
    with pytest.raises(ValueError, match="beta"):
        partition.mc_log_partition(ref, rew, 0.0, 10)
    with pytest.raises(ValueError, match="beta"):
        partition.mc_relative_errors(ref, rew, [1.0, -2.0], [1, 2])
    with pytest.raises(ValueError, match="betas"):
        partition.mc_relative_errors(ref, rew, 1.0, [1, 2])
    with pytest.raises(ValueError, match="strictly increasing"):
        partition.mc_relative_errors(ref, rew, [1.0], [10, 5])
    with pytest.raises(ValueError, match="positive ints"):
        partition.mc_relative_errors(ref, rew, [1.0], [0, 5])
    with pytest.raises(ValueError, match="positive ints"):
        partition.mc_relative_errors(ref, rew, [1.0], [1.5, 2.5])
    with pytest.raises(ValueError, match="repeats"):
        partition.mc_relative_errors(ref, rew, [1.0], [1, 2], repeats=0)
    with pytest.raises(ValueError, match="shape mismatch"):
        partition.relative_std_one_sample(ref, rew[:, :3], 1.0)
    with pytest.raises(ValueError, match="sum to 1"):
        partition.mc_log_partition(ref * 2, rew, 1.0, 10)
