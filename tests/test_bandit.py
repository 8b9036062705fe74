"""The discrete problem of chapters 1-4: closed forms against brute force, and bad input."""
import numpy as np
import pytest
from scipy.optimize import minimize

from dpo_teach import bandit


@pytest.fixture
def problem():
    return bandit.make_problem(3, 5, seed=4)


def test_optimal_policy_matches_the_formula_and_normalizes(problem):
    beta = 0.7
    pi = bandit.optimal_policy(problem.ref_probs, problem.reward, beta)
    naive = problem.ref_probs * np.exp(problem.reward / beta)
    naive /= naive.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(pi, naive, rtol=1e-12)
    np.testing.assert_allclose(pi.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(bandit.partition_function(problem.ref_probs, problem.reward, beta),
                               (problem.ref_probs * np.exp(problem.reward / beta)).sum(axis=1), rtol=1e-12)


def test_objective_at_optimum_is_beta_log_z_and_beats_a_generic_optimizer(problem):
    beta = 0.5
    pi = bandit.optimal_policy(problem.ref_probs, problem.reward, beta)
    best = bandit.objective(pi, problem.ref_probs, problem.reward, beta)
    np.testing.assert_allclose(best, beta * bandit.log_partition(problem.ref_probs, problem.reward, beta), rtol=1e-12)
    for x in range(3):  # an independent maximization over the simplex (softmax logits, BFGS)
        def neg(z):
            p = np.exp(z - z.max()); p /= p.sum()
            return -bandit.objective(p[None], problem.ref_probs[x:x + 1], problem.reward[x:x + 1], beta)[0]
        res = minimize(neg, np.zeros(5), method="BFGS", options={"gtol": 1e-10})
        assert -res.fun <= best[x] + 1e-10
        assert -res.fun == pytest.approx(best[x], abs=1e-7)


def test_optimal_policy_stable_for_tiny_beta(problem):
    pi = bandit.optimal_policy(problem.ref_probs, problem.reward, 1e-6)
    assert np.all(np.isfinite(pi))
    np.testing.assert_array_equal(pi.argmax(axis=1), problem.reward.argmax(axis=1))
    assert np.all(np.isfinite(bandit.log_partition(problem.ref_probs, problem.reward, 1e-6)))


def test_kl_is_zero_on_equal_and_positive_otherwise(problem):
    assert np.allclose(bandit.kl_divergence(problem.ref_probs, problem.ref_probs), 0)
    other = bandit.optimal_policy(problem.ref_probs, problem.reward, 1.0)
    assert np.all(bandit.kl_divergence(other, problem.ref_probs) > 0)


def test_sampled_preferences_follow_bradley_terry():
    ref = np.full((1, 2), 0.5)
    reward = np.array([[1.0, 0.0]])
    pairs = bandit.sample_preferences(ref, reward, 40000, seed=1)
    assert np.all(pairs.chosen != pairs.rejected)
    frac = np.mean(pairs.chosen == 0)
    expected = 1 / (1 + np.exp(-1.0))
    assert abs(frac - expected) < 4 * np.sqrt(expected * (1 - expected) / 40000)
    # and a wrong model (sigma of twice the difference) is far outside the same band
    assert abs(frac - 1 / (1 + np.exp(-2.0))) > 0.1


def test_sampling_is_seeded(problem):
    a = bandit.sample_preferences(problem.ref_probs, problem.reward, 50, seed=3)
    b = bandit.sample_preferences(problem.ref_probs, problem.reward, 50, seed=3)
    assert all(np.array_equal(u, v) for u, v in zip((a.prompt, a.chosen), (b.prompt, b.chosen)))


@pytest.mark.parametrize("beta", [0, -1.0, float("nan"), float("inf"), "x"])
def test_bad_beta(problem, beta):
    with pytest.raises(ValueError, match="beta"):
        bandit.optimal_policy(problem.ref_probs, problem.reward, beta)


def test_bad_tables(problem):
    with pytest.raises(ValueError, match="row 0 sums to"):
        bandit.optimal_policy(problem.ref_probs * 2, problem.reward, 1.0)
    with pytest.raises(ValueError, match="shape mismatch"):
        bandit.optimal_policy(problem.ref_probs, problem.reward[:, :3], 1.0)
    bad = problem.reward.copy(); bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="reward contains non-finite"):
        bandit.optimal_policy(problem.ref_probs, bad, 1.0)
    with pytest.raises(ValueError, match="negative"):
        bandit.kl_divergence(np.array([[1.5, -0.5]]), np.array([[0.5, 0.5]]))
    with pytest.raises(ValueError, match="2-D"):
        bandit.expected_reward(np.array([0.5, 0.5]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="positive int"):
        bandit.sample_preferences(problem.ref_probs, problem.reward, 0)
