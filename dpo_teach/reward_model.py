r"""Bradley-Terry preferences and the reward-model loss of RLHF (chapter 1).

Bradley-Terry (paper Eq. 1): :math:`p(y_1 \succ y_2 | x) = \sigma(r(x, y_1) - r(x, y_2))`.
The reward model is fit by the negative log-likelihood of the preferences (Eq. 2); this is the
stage that DPO removes.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .bandit import Pairs


def bradley_terry_prob(r_chosen, r_rejected):
    """p(chosen > rejected) = sigma(r_chosen - r_rejected) (Eq. 1). Same shape as the inputs."""
    return torch.sigmoid(torch.as_tensor(r_chosen) - torch.as_tensor(r_rejected))


def reward_model_nll(r_chosen, r_rejected):
    r"""Mean of -log sigma(r_w - r_l) (Eq. 2), computed with logsigmoid (stable). Shape: () from (N,)."""
    r_chosen, r_rejected = torch.as_tensor(r_chosen), torch.as_tensor(r_rejected)
    if r_chosen.shape != r_rejected.shape:
        raise ValueError(f"r_chosen and r_rejected must have the same shape, got "
                         f"{tuple(r_chosen.shape)} and {tuple(r_rejected.shape)}")
    return -F.logsigmoid(r_chosen - r_rejected).mean()  # Eq. 2


def fit_tabular_reward(pairs: Pairs, n_prompts: int, n_responses: int, *, steps=200, seed=0):
    """Fit a reward table r_phi (X, Y) to preference pairs by minimizing Eq. 2 with L-BFGS (float64).

    Each prompt's rewards are only identified up to a constant (chapter 3, Lemma 1), so the table
    is returned centred: every row has mean 0.
    """
    if len(pairs) == 0:
        raise ValueError("fit_tabular_reward: need at least one preference pair")
    torch.manual_seed(seed)
    table = torch.zeros(n_prompts, n_responses, dtype=torch.float64, requires_grad=True)
    x, w, l = (torch.as_tensor(a) for a in (pairs.prompt, pairs.chosen, pairs.rejected))
    opt = torch.optim.LBFGS([table], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = reward_model_nll(table[x, w], table[x, l])
        loss.backward()
        return loss

    opt.step(closure)
    r = table.detach().numpy()
    return r - r.mean(axis=1, keepdims=True)


def centred(reward) -> np.ndarray:
    """Subtract each prompt's mean reward: one representative of the equivalence class (ch. 3)."""
    r = np.asarray(reward, dtype=np.float64)
    return r - r.mean(axis=1, keepdims=True)
