r"""Closed-form gradients of the preference losses (chapter 5), to check autograd against the derivations.

Everything here is a formula derived in chapter 5, written out so that a test (and the chapter) can
compare it with what ``torch.autograd`` computes from :mod:`dpo_teach.losses`:

- the DPO gradient of Section 4 of Rafailov et al. (2023, arXiv 2305.18290): for one pair,
  :math:`\partial L / \partial \log\pi_\theta(y_w|x) = -\beta\,\sigma(\hat r_l - \hat r_w)` and
  :math:`\partial L / \partial \log\pi_\theta(y_l|x) = +\beta\,\sigma(\hat r_l - \hat r_w)`, with implicit
  rewards :math:`\hat r = \beta \log \pi_\theta / \pi_{ref}`;
- the listwise (Plackett-Luce, Eq. 20) gradient: with :math:`u_k = \hat r(y_k)` in ranked order,
  :math:`\partial L / \partial u_m = -1 + \sum_{k \le m} e^{u_m} / \sum_{j \ge k} e^{u_j}`;
- the chain rule through a tabular softmax policy (:mod:`dpo_teach.tabular`):
  :math:`\partial \log \pi_\theta(y|x) / \partial \theta_{x,:} = e_y - \pi_\theta(\cdot|x)`.

All functions take and return float64-friendly torch tensors and never call autograd.
"""
from __future__ import annotations

import torch

__all__ = ["dpo_weights", "dpo_logp_grads", "plackett_luce_logp_grads", "tabular_logit_grads"]


def _check_same_shape(**tensors):
    shapes = {k: tuple(v.shape) for k, v in tensors.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError("shape mismatch: " + ", ".join(f"{k} {s}" for k, s in shapes.items()))


def dpo_weights(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta):
    r"""The weight of each pair in the DPO gradient: :math:`\sigma(\hat r_l - \hat r_w)` (Section 4).

    Near 1 when the implicit reward ranks the pair the wrong way, 1/2 when it cannot tell them apart,
    near 0 once the pair is ranked right by a wide margin. Shape: (B,) for (B,) inputs.
    """
    _check_same_shape(policy_chosen_logps=policy_chosen_logps, policy_rejected_logps=policy_rejected_logps,
                      ref_chosen_logps=ref_chosen_logps, ref_rejected_logps=ref_rejected_logps)
    r_w = beta * (policy_chosen_logps - ref_chosen_logps)  # (B,) implicit reward of y_w
    r_l = beta * (policy_rejected_logps - ref_rejected_logps)  # (B,) implicit reward of y_l
    return torch.sigmoid(r_l - r_w)  # sigma(r_hat(y_l) - r_hat(y_w))


def dpo_logp_grads(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta):
    r"""Derivatives of the per-pair DPO loss (Eq. 7) with respect to the two policy log-probs.

    Returns ``(d_chosen, d_rejected)``, each Shape: (B,):
    :math:`-\beta\,\sigma(\hat r_l - \hat r_w)` and :math:`+\beta\,\sigma(\hat r_l - \hat r_w)` (Section 4).
    """
    w = dpo_weights(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta)
    return -beta * w, beta * w


def plackett_luce_logp_grads(policy_logps, ref_logps, beta):
    r"""Derivatives of the listwise loss (Eq. 20) with respect to the policy log-probs, in ranked order.

    With :math:`u = \beta(\log\pi_\theta - \log\pi_{ref})` (columns best first) and the suffix softmax
    :math:`q_{k,m} = e^{u_m} / \sum_{j \ge k} e^{u_j}` (the probability of picking item m at stage k),

    .. math:: \frac{\partial L}{\partial \log\pi_\theta(y_m)} = \beta \Big( -1 + \sum_{k \le m} q_{k,m} \Big).

    Args:
        policy_logps, ref_logps: Shape: (B, K), column 0 the best-ranked response.
        beta: KL strength.

    Returns:
        Shape: (B, K). Each row sums to 0 (adding a constant to a row's log-probs changes nothing).
    """
    _check_same_shape(policy_logps=policy_logps, ref_logps=ref_logps)
    if policy_logps.dim() != 2 or policy_logps.shape[1] < 2:
        raise ValueError(f"policy_logps must have shape (B, K) with K >= 2, got {tuple(policy_logps.shape)}")
    u = beta * (policy_logps - ref_logps)  # (B, K)
    K = u.shape[1]
    tail = torch.logcumsumexp(u.flip(-1), dim=-1).flip(-1)  # (B, K) log sum_{j >= k} exp(u_j)
    q = torch.exp(u[:, None, :] - tail[:, :, None])  # (B, K_stage, K_item) q[k, m] = exp(u_m) / S_k
    picked_after = torch.triu(torch.ones(K, K, dtype=torch.bool))  # (K, K) True where m >= k
    q = torch.where(picked_after, q, torch.zeros((), dtype=q.dtype))  # item m is still available at stage k
    return beta * (-1.0 + q.sum(dim=1))  # (B, K): -1 + sum_{k <= m} q[k, m]


def tabular_logit_grads(probs, prompt, items, logp_grads):
    r"""Chain rule through a tabular softmax policy: from d(loss)/d(log-probs) to d(loss)/d(logits).

    A gathered log-prob :math:`\log\pi_\theta(y|x)` depends only on row x of the logits, with gradient
    :math:`e_y - \pi_\theta(\cdot|x)` (the derivative of log-softmax). So

    .. math:: \frac{\partial L}{\partial \theta_{x,:}} = \sum_{i: x_i = x} \sum_k g_{ik} \big(e_{y_{ik}} - \pi_\theta(\cdot|x)\big).

    Args:
        probs: :math:`\pi_\theta`. Shape: (X, Y)
        prompt: prompt id of each example (int64). Shape: (N,)
        items: the response ids whose log-probs entered the loss (int64). Shape: (N, K)
        logp_grads: d(loss)/d(log pi(items)), e.g. from :func:`dpo_logp_grads` (stacked, divided by N
            for a mean loss). Shape: (N, K)

    Returns:
        d(loss)/d(logits). Shape: (X, Y)
    """
    X, Y = probs.shape
    N, K = items.shape
    if prompt.shape != (N,) or logp_grads.shape != (N, K):
        raise ValueError(f"expected prompt (N,) and logp_grads (N, K) for items {(N, K)}, "
                         f"got {tuple(prompt.shape)} and {tuple(logp_grads.shape)}")
    grad = torch.zeros(X, Y, dtype=probs.dtype)
    rows = prompt[:, None].expand(N, K)  # (N, K)
    grad.index_put_((rows.reshape(-1), items.reshape(-1)), logp_grads.reshape(-1), accumulate=True)  # sum g e_y
    per_prompt = torch.zeros(X, dtype=probs.dtype).index_add_(0, prompt, logp_grads.sum(dim=1))  # (X,) sum g
    return grad - per_prompt[:, None] * probs  # (X, Y): sum g (e_y - pi)
