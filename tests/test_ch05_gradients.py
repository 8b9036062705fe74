"""dpo_teach.gradients: the closed-form gradients of chapter 5 against torch.autograd (an independent
reference), and evidence that the comparison would catch a wrong formula (Appendix A.4's order)."""
import math

import numpy as np
import pytest
import torch

from dpo_teach import bandit, gradients, tabular
from dpo_teach.losses import dpo_loss, plackett_luce_loss


def _logps(gen, *shape):
    return -10 * torch.rand(*shape, generator=gen, dtype=torch.float64)


def _autograd_dpo(pc, pr, rc, rr, beta):
    pc, pr = pc.clone().requires_grad_(True), pr.clone().requires_grad_(True)
    dpo_loss(pc, pr, rc, rr, beta)[0].sum().backward()  # per-pair gradients
    return pc.grad, pr.grad


@pytest.mark.parametrize("beta", [0.01, 0.1, 1.0, 5.0])
def test_dpo_logp_grads_match_autograd(beta):
    gen = torch.Generator().manual_seed(1)
    pc, pr, rc, rr = (_logps(gen, 300) for _ in range(4))
    d_c, d_r = gradients.dpo_logp_grads(pc, pr, rc, rr, beta)
    a_c, a_r = _autograd_dpo(pc, pr, rc, rr, beta)
    assert torch.allclose(d_c, a_c, atol=1e-12, rtol=0) and torch.allclose(d_r, a_r, atol=1e-12, rtol=0)
    assert torch.equal(d_c, -d_r)  # the same weight with opposite signs


def test_the_comparison_catches_appendix_a4_order():
    gen = torch.Generator().manual_seed(2)
    pc, pr, rc, rr = (_logps(gen, 300) for _ in range(4))
    beta = 0.5
    a_c, _ = _autograd_dpo(pc, pr, rc, rr, beta)
    swapped = -beta * torch.sigmoid(beta * (pc - rc) - beta * (pr - rr))  # sigma(r_w - r_l): the slip
    assert not torch.allclose(swapped, a_c, atol=1e-3)


def test_dpo_weights_are_one_half_at_the_reference_and_track_the_margin():
    gen = torch.Generator().manual_seed(3)
    ref_c, ref_r = _logps(gen, 50), _logps(gen, 50)
    w0 = gradients.dpo_weights(ref_c, ref_r, ref_c, ref_r, 0.3)
    assert torch.equal(w0, torch.full_like(w0, 0.5))
    # chosen log-prob up by 2, rejected down by 2: margin beta * 4 = 1.2 -> weight sigma(-1.2)
    w = gradients.dpo_weights(ref_c + 2, ref_r - 2, ref_c, ref_r, 0.3)
    assert torch.allclose(w, torch.full_like(w, 1 / (1 + math.exp(1.2))), atol=1e-15)


def test_dpo_weights_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="shape mismatch"):
        gradients.dpo_weights(torch.zeros(3), torch.zeros(3), torch.zeros(2), torch.zeros(3), 0.1)


@pytest.mark.parametrize("K", [2, 3, 4, 6])
def test_plackett_luce_logp_grads_match_autograd(K):
    gen = torch.Generator().manual_seed(K)
    pol, ref = _logps(gen, 200, K), _logps(gen, 200, K)
    leaf = pol.clone().requires_grad_(True)
    plackett_luce_loss(leaf, ref, 0.7)[0].sum().backward()
    closed = gradients.plackett_luce_logp_grads(pol, ref, 0.7)
    assert torch.allclose(closed, leaf.grad, atol=1e-12, rtol=0)
    assert closed.sum(dim=1).abs().max() < 1e-12  # invariance to a constant shift per row


def test_plackett_luce_grads_for_two_responses_are_the_dpo_grads():
    gen = torch.Generator().manual_seed(7)
    pol, ref = _logps(gen, 40, 2), _logps(gen, 40, 2)
    closed = gradients.plackett_luce_logp_grads(pol, ref, 0.2)
    d_c, d_r = gradients.dpo_logp_grads(pol[:, 0], pol[:, 1], ref[:, 0], ref[:, 1], 0.2)
    assert torch.allclose(closed, torch.stack([d_c, d_r], 1), atol=1e-15)


def test_plackett_luce_grads_at_init_are_the_uniform_stage_sums():
    closed = gradients.plackett_luce_logp_grads(torch.zeros(1, 4, dtype=torch.float64),
                                                torch.zeros(1, 4, dtype=torch.float64), 1.0)[0]
    assert np.allclose(closed.numpy(), [-3 / 4, -1 + 1 / 4 + 1 / 3, -1 + 1 / 4 + 1 / 3 + 1 / 2, 13 / 12], atol=1e-15)


def test_plackett_luce_grads_reject_bad_shapes():
    with pytest.raises(ValueError, match=r"\(B, K\)"):
        gradients.plackett_luce_logp_grads(torch.zeros(5), torch.zeros(5), 0.1)


def test_tabular_chain_rule_matches_autograd_for_pairs_and_rankings():
    problem = bandit.make_problem(3, 5, seed=4)
    gen = torch.Generator().manual_seed(4)
    policy = tabular.TabularPolicy(torch.randn(3, 5, generator=gen, dtype=torch.float64))
    ref_lp = torch.log(torch.as_tensor(problem.ref_probs))
    probs = torch.softmax(policy.logits.detach(), -1)
    # pairs
    pairs = bandit.sample_preferences(problem.ref_probs, problem.reward, 200, seed=4)
    P, C, R = (torch.as_tensor(a) for a in (pairs.prompt, pairs.chosen, pairs.rejected))
    lp = policy.log_probs()
    dpo_loss(lp[P, C], lp[P, R], ref_lp[P, C], ref_lp[P, R], 0.4)[0].mean().backward()
    d = torch.stack(gradients.dpo_logp_grads(lp[P, C].detach(), lp[P, R].detach(), ref_lp[P, C], ref_lp[P, R], 0.4), 1)
    closed = gradients.tabular_logit_grads(probs, P, torch.stack([C, R], 1), d / len(P))
    assert torch.allclose(closed, policy.logits.grad, atol=1e-13, rtol=0)
    # rankings
    policy.logits.grad = None
    ranked = tabular.sample_ranked_responses(problem, 150, 4, seed=4)
    P, items = torch.as_tensor(ranked.prompt), torch.as_tensor(ranked.responses)
    lp = policy.log_probs()
    plackett_luce_loss(lp[P[:, None], items], ref_lp[P[:, None], items], 0.4)[0].mean().backward()
    g = gradients.plackett_luce_logp_grads(lp[P[:, None], items].detach(), ref_lp[P[:, None], items], 0.4)
    closed = gradients.tabular_logit_grads(probs, P, items, g / len(P))
    assert torch.allclose(closed, policy.logits.grad, atol=1e-13, rtol=0)


def test_tabular_chain_rule_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="expected prompt"):
        gradients.tabular_logit_grads(torch.ones(2, 3) / 3, torch.zeros(4, dtype=torch.int64),
                                      torch.zeros(4, 2, dtype=torch.int64), torch.zeros(4, 3))
