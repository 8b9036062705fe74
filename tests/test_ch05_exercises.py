"""Chapter 5's exercise checkers accept the shipped solutions and reject wrong answers."""
import math

import numpy as np
import pytest
import torch

from dpo_teach.exercises import ch05, load_solutions


def _solutions():
    return load_solutions("ch05")


def test_missing_answers_are_not_errors():
    for check in (ch05.check_pair_weight, ch05.check_listwise_gradient_at_init, ch05.check_dpo_logp_grads):
        fb = check(None)
        assert not fb and "not answered yet" in repr(fb)


# ---------------------------------------------------------------- exercise 1 ---------------------

def test_pair_weight_solution_matches_autograd():
    p = ch05.WEIGHT_PAIR
    pc = torch.tensor([p["policy_chosen"]], dtype=torch.float64, requires_grad=True)
    h = (pc - p["ref_chosen"]) - (p["policy_rejected"] - p["ref_rejected"])
    loss = -torch.nn.functional.logsigmoid(p["beta"] * h).sum()  # Eq. 7, written out
    loss.backward()
    weight_from_autograd = -pc.grad.item() / p["beta"]  # dL/d log pi(y_w) = -beta * weight
    assert _solutions()["pair_weight"] == pytest.approx(weight_from_autograd, rel=1e-12)
    assert ch05.check_pair_weight(_solutions()["pair_weight"])
    assert ch05.check_pair_weight(round(weight_from_autograd, 4))


@pytest.mark.parametrize("wrong, hint", [
    (1 / (1 + math.exp(-0.5)), "Appendix A.4"),  # sigma(r_w - r_l)
    (0.5, "initialization"),
    (1 / (1 + math.exp(5.0)), "beta is missing"),
    (0.1 / (1 + math.exp(0.5)), "beta times the weight"),
    (0.9, "not the weight"),
])
def test_pair_weight_rejects_slips(wrong, hint):
    fb = ch05.check_pair_weight(wrong)
    assert not fb and hint in fb.message


def test_pair_weight_rejects_absurd_types():
    assert not ch05.check_pair_weight("small")
    assert not ch05.check_pair_weight(float("nan"))


# ---------------------------------------------------------------- exercise 2 ---------------------

def test_listwise_gradient_solution_matches_autograd_and_is_accepted():
    u = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    tail = torch.logcumsumexp(u.flip(-1), -1).flip(-1)
    (-(u - tail).sum()).backward()  # Eq. 20 written out, beta = 1
    assert np.allclose(_solutions()["listwise_gradient_at_init"], u.grad[0].numpy(), atol=1e-12)
    assert ch05.check_listwise_gradient_at_init(_solutions()["listwise_gradient_at_init"])
    assert ch05.check_listwise_gradient_at_init(torch.tensor([-0.6667, -0.1667, 0.8333]))


@pytest.mark.parametrize("wrong, hint", [
    ([2 / 3, 1 / 6, -5 / 6], "signs are flipped"),
    ([1 / 3, 5 / 6, 11 / 6], "-1 from the numerator"),
    ([-2 / 3, -1 / 3, 0.0], "NOT yet placed"),
    ([0.1, 0.2, 0.3], "sum to 0"),
    ([-0.5, 0.5], "expected three numbers"),
])
def test_listwise_gradient_rejects_slips(wrong, hint):
    fb = ch05.check_listwise_gradient_at_init(wrong)
    assert not fb and hint in fb.message


# ---------------------------------------------------------------- exercise 3 ---------------------

def test_dpo_logp_grads_solution_is_accepted():
    assert ch05.check_dpo_logp_grads(_solutions()["dpo_logp_grads"])


def _swapped(pc, pr, rc, rr, beta):
    w = torch.sigmoid(beta * (pc - rc) - beta * (pr - rr))  # Appendix A.4's order
    return -beta * w, beta * w


@pytest.mark.parametrize("wrong, hint", [
    (_swapped, "Appendix A.4"),
    (lambda *a: tuple(-g for g in _solutions()["dpo_logp_grads"](*a)), "signs are flipped"),
    (lambda pc, pr, rc, rr, beta: tuple(g / beta for g in _solutions()["dpo_logp_grads"](pc, pr, rc, rr, beta)),
     "factor beta is missing"),
    (lambda pc, pr, rc, rr, beta: (pc, pr), "does not match autograd"),
    (lambda pc, pr, rc, rr, beta: (pc[:3], pr[:3]), "shape (16,)"),
    (lambda pc, pr, rc, rr, beta: None, "raised TypeError"),
])
def test_dpo_logp_grads_rejects_wrong_functions(wrong, hint):
    fb = ch05.check_dpo_logp_grads(wrong)
    assert not fb and hint in fb.message


def test_dpo_logp_grads_rejects_non_functions():
    assert "expected a function" in ch05.check_dpo_logp_grads([1, 2]).message
