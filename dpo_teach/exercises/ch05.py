r"""Exercise checkers for chapter 5, "The gradient, and what DPO really does".

Three exercises:

- :func:`check_pair_weight`: the weight :math:`\sigma(\hat r_l - \hat r_w)` of one pair in the DPO gradient
  (Section 4 of Rafailov et al. 2023, arXiv 2305.18290), as a number;
- :func:`check_listwise_gradient_at_init`: the gradient of the listwise loss (Eq. 20) with respect to the
  implicit rewards at :math:`\pi_\theta = \pi_{ref}`, for K = 3, as three numbers;
- :func:`check_dpo_logp_grads`: a function returning the derivatives of the DPO loss with respect to
  the two policy log-probabilities, compared with autograd on :func:`dpo_teach.losses.dpo_loss`.

Every checker returns a :class:`~dpo_teach.exercises.Feedback` and never raises on a wrong answer.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from dpo_teach.exercises import Feedback, as_number, known_slip, missing
from dpo_teach.losses import dpo_loss, plackett_luce_loss

__all__ = ["WEIGHT_PAIR", "check_pair_weight", "check_listwise_gradient_at_init", "check_dpo_logp_grads"]

# Exercise 1: the pair of chapter 3's exercise 1 (beta and four log-probabilities).
WEIGHT_PAIR = {"policy_chosen": -12.0, "policy_rejected": -15.0, "ref_chosen": -14.0, "ref_rejected": -12.0,
               "beta": 0.1}
_TOL = 5e-4  # "4 decimals are enough"


def _sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


def check_pair_weight(answer) -> Feedback:
    """Exercise 1: sigma(r_hat(y_l) - r_hat(y_w)) for the pair in :data:`WEIGHT_PAIR` (a number)."""
    name = "pair_weight"
    value, problem = as_number(name, answer)
    if problem is not None:
        return problem
    p = WEIGHT_PAIR
    r_w = p["beta"] * (p["policy_chosen"] - p["ref_chosen"])  # 0.2
    r_l = p["beta"] * (p["policy_rejected"] - p["ref_rejected"])  # -0.3
    right = _sigmoid(r_l - r_w)
    if abs(value - right) <= _TOL:
        return Feedback(name, True, f"{right:.4f} = sigma(-0.3 - 0.2): the pair is ranked right, so it weighs less "
                                    "than the 1/2 it had at initialization")
    h = (p["policy_chosen"] - p["ref_chosen"]) - (p["policy_rejected"] - p["ref_rejected"])
    slips = [
        (_sigmoid(r_w - r_l), "that is sigma(r_w - r_l), the order printed at the end of Appendix A.4; the weight "
                              "is sigma(r_hat(y_l) - r_hat(y_w)), large when the pair is ranked WRONG"),
        (_sigmoid(-h), "beta is missing: the implicit rewards are beta log(pi_theta / pi_ref)"),
        (_sigmoid(p["beta"] * ((p["policy_rejected"]) - p["policy_chosen"])),
         "the reference log-probabilities are missing: r_hat = beta (log pi_theta - log pi_ref)"),
        (0.5, "1/2 is the weight at initialization (pi_theta = pi_ref), not here"),
        (p["beta"] * right, "that is the size of the gradient, beta times the weight; give the weight itself"),
    ]
    slip = known_slip(name, value, slips, _TOL)
    if slip is not None:
        return slip
    return Feedback(name, False, f"{value:.4f} is not the weight; compute r_hat = beta (log pi_theta - log pi_ref) "
                                 "for both responses, then sigma(r_hat_l - r_hat_w)")


# ------------------------------------------------------------ exercise 2 ----------------------

def _listwise_grad_at_init(K):
    u = torch.zeros(1, K, dtype=torch.float64, requires_grad=True)
    plackett_luce_loss(u, torch.zeros(1, K, dtype=torch.float64), 1.0)[0].sum().backward()
    return u.grad[0].numpy()  # with beta = 1 and pi_ref = 0 log-probs, d/d logp = d/du


def check_listwise_gradient_at_init(answer) -> Feedback:
    """Exercise 2: dL/du_1, dL/du_2, dL/du_3 of the listwise loss at u = 0, for K = 3 (three numbers)."""
    name = "listwise_gradient_at_init"
    if answer is None:
        return missing(name)
    try:
        got = np.asarray(answer.detach() if isinstance(answer, torch.Tensor) else answer, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return Feedback(name, False, f"expected three numbers (a list), got {type(answer).__name__}")
    if got.shape != (3,):
        return Feedback(name, False, f"expected three numbers, one per position (best first), got {got.size}")
    right = _listwise_grad_at_init(3)  # [-2/3, -1/6, 5/6]
    if np.allclose(got, right, atol=_TOL, rtol=0):
        return Feedback(name, True, "[-2/3, -1/6, 5/6]: gradient descent raises the two best-ranked implicit "
                                    "rewards and lowers the last; the three sum to 0")
    slips = [
        (-right, "the signs are flipped: this is dL/du, and the loss FALLS when u_1 rises"),
        (right + 1, "the -1 from the numerator term u_m is missing"),
        (np.array([-1 + 1 / 3, -1 + 2 / 3, -1 + 3 / 3]),
         "each stage k picks among the responses NOT yet placed (j >= k): at u = 0 that is 1/(K - k + 1), not 1/K"),
    ]
    for wrong, hint in slips:
        if np.allclose(got, wrong, atol=_TOL, rtol=0):
            return Feedback(name, False, f"not it: {hint}")
    extra = "" if abs(got.sum()) < 1e-3 else " (hint: the three must sum to 0: the loss ignores a common shift of u)"
    return Feedback(name, False, "not it; use dL/du_m = -1 + sum_{k <= m} exp(u_m) / sum_{j >= k} exp(u_j) at u = 0"
                    + extra)


# ------------------------------------------------------------ exercise 3 ----------------------

def check_dpo_logp_grads(answer) -> Feedback:
    """Exercise 3: ``f(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta) -> (d_chosen, d_rejected)``."""
    name = "dpo_logp_grads"
    if answer is None:
        return missing(name)
    if not callable(answer):
        return Feedback(name, False, "expected a function dpo_logp_grads(policy_chosen_logps, policy_rejected_logps, "
                                     f"ref_chosen_logps, ref_rejected_logps, beta), got {type(answer).__name__}")
    gen = torch.Generator().manual_seed(5)
    for beta in (0.1, 0.5, 2.0):
        logps = -10 * torch.rand(4, 16, generator=gen, dtype=torch.float64)  # (4, B)
        pc, pr = logps[0].clone().requires_grad_(True), logps[1].clone().requires_grad_(True)
        dpo_loss(pc, pr, logps[2], logps[3], beta)[0].sum().backward()  # per-pair losses: d loss_i / d logp_i
        try:
            out = answer(logps[0].clone(), logps[1].clone(), logps[2].clone(), logps[3].clone(), beta)
            d_c, d_r = (torch.as_tensor(t, dtype=torch.float64).detach() for t in out)
        except Exception as err:  # the learner's code may raise anything
            return Feedback(name, False, f"your function raised {type(err).__name__}: {err} (it must return a pair "
                                         "of tensors (d_chosen, d_rejected))")
        if d_c.shape != (16,) or d_r.shape != (16,):
            return Feedback(name, False, f"expected two tensors of shape (16,) for 16 pairs, got {tuple(d_c.shape)} "
                                         f"and {tuple(d_r.shape)}")
        if torch.allclose(d_c, pc.grad, atol=1e-10) and torch.allclose(d_r, pr.grad, atol=1e-10):
            continue
        r_w, r_l = beta * (logps[0] - logps[2]), beta * (logps[1] - logps[3])
        if torch.allclose(d_c, -beta * torch.sigmoid(r_w - r_l), atol=1e-8):
            return Feedback(name, False, "the rewards are swapped inside sigma (Appendix A.4's slip): the weight is "
                                         "sigma(r_hat_l - r_hat_w)")
        if torch.allclose(d_c, -pc.grad, atol=1e-8):
            return Feedback(name, False, "the signs are flipped: the loss falls when log pi(y_w) rises, so "
                                         "d_chosen is negative")
        if torch.allclose(d_c * beta, pc.grad, atol=1e-8):
            return Feedback(name, False, "a factor beta is missing: dL/dlog pi(y_w) = -beta sigma(r_hat_l - r_hat_w)")
        return Feedback(name, False, f"does not match autograd for beta = {beta}; start from "
                                     "d/dh[-log sigma(beta h)] = -beta sigma(-beta h)")
    return Feedback(name, True, "matches autograd on dpo_loss for 48 random pairs and three values of beta")
