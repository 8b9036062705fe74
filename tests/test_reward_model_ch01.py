"""Chapter 1's reward model (Eq. 1-2) and its exercise checkers."""
import numpy as np
import pytest
import sympy as sp
import torch

from dpo_teach import bandit, reward_model
from dpo_teach.exercises import ch01, load_solutions




def test_nll_matches_naive_formula_and_is_stable():
    rw, rl = torch.tensor([1.0, -2.0, 0.3], dtype=torch.float64), torch.tensor([0.0, 1.0, 0.3], dtype=torch.float64)
    naive = -torch.log(1 / (1 + torch.exp(-(rw - rl)))).mean()
    assert reward_model.reward_model_nll(rw, rl).item() == pytest.approx(naive.item(), rel=1e-12)
    big = reward_model.reward_model_nll(torch.tensor([-1e4]), torch.tensor([1e4]))
    assert torch.isfinite(big) and big.item() == pytest.approx(2e4)
    with pytest.raises(ValueError, match="same shape"):
        reward_model.reward_model_nll(torch.zeros(2), torch.zeros(3))


def test_fitted_reward_recovers_true_reward_up_to_a_prompt_constant():
    problem = bandit.make_problem(2, 4, seed=2)
    pairs = bandit.sample_preferences(problem.ref_probs, problem.reward, 30000, seed=2)
    fitted = reward_model.fit_tabular_reward(pairs, 2, 4)
    assert np.abs(fitted - reward_model.centred(problem.reward)).max() < 0.2
    assert np.allclose(fitted.mean(axis=1), 0)


def test_exercise_checkers_accept_solutions_and_reject_wrong_answers():
    sol = load_solutions("ch01")
    r1, r2 = sp.symbols("r1 r2", real=True)
    assert ch01.check_bt_probability(sol["bt_probability"]).ok
    assert ch01.check_reward_nll(sol["reward_nll"]).ok
    assert ch01.check_shift_invariance(sol["shift_invariance"]).ok
    for wrong in (None, 0.5, 1 - sol["bt_probability"], "abc"):
        assert not ch01.check_bt_probability(wrong).ok
    assert "p(y2 > y1)" in ch01.check_bt_probability(1 - sol["bt_probability"]).message
    for wrong in (None, 3, lambda a, b: np.mean(np.log1p(np.exp(a - b))), lambda a, b: 1 / 0):
        assert not ch01.check_reward_nll(wrong).ok
    f = sp.Symbol("f", real=True)
    for wrong in (None, 1 / (1 + sp.exp(r1 - r2)), sp.exp(r1 + f) / (sp.exp(r1 + f) + sp.exp(r2 + f))):
        assert not ch01.check_shift_invariance(wrong).ok
    assert "not answered" in repr(ch01.check_bt_probability(None))
