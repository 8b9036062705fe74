"""Tests for dpo_teach.losses, each against an independent reference (naive formula, hand loop,
closed-form gradient, finite differences)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dpo_teach.losses import dpo_loss, ipo_loss, plackett_luce_loss, sequence_logps
from dpo_teach.rankings import ranking_log_prob

F64 = torch.float64


def _rand_logps(seed, B=8, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    return [(-20 * torch.rand(B, generator=g, dtype=F64)).to(dtype) for _ in range(4)]


def _naive_dpo(pc, pr, rc, rr, beta):
    """The textbook formula in plain float64 math: -log(1 / (1 + exp(-beta h)))."""
    h = (pc - rc) - (pr - rr)
    return -math.log(1.0 / (1.0 + math.exp(-beta * h)))


# ----------------------------------------------------------------------------- dpo_loss


@pytest.mark.parametrize("beta", [0.01, 0.1, 1.0, 5.0])
def test_dpo_matches_naive_formula(beta):
    pc, pr, rc, rr = _rand_logps(0)
    losses, chosen_r, rejected_r = dpo_loss(pc, pr, rc, rr, beta)
    assert losses.shape == chosen_r.shape == rejected_r.shape == (8,)
    expected = [_naive_dpo(*map(float, row), beta) for row in zip(pc, pr, rc, rr)]
    np.testing.assert_allclose(losses.numpy(), expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(chosen_r.numpy(), beta * (pc - rc).numpy(), rtol=1e-14)
    np.testing.assert_allclose(rejected_r.numpy(), beta * (pr - rr).numpy(), rtol=1e-14)


def test_dpo_is_ln2_when_log_ratios_are_equal():
    # both log-ratios equal 2, so h = 0 whatever beta is
    pc, rc = torch.tensor([-3.0, 0.0], dtype=F64), torch.tensor([-5.0, -2.0], dtype=F64)
    pr, rr = torch.tensor([-7.0, -1.0], dtype=F64), torch.tensor([-9.0, -3.0], dtype=F64)
    for beta in (0.1, 1.0, 3.0):
        losses, _, _ = dpo_loss(pc, pr, rc, rr, beta)
        np.testing.assert_allclose(losses.numpy(), [math.log(2)] * 2, rtol=1e-15)


def test_dpo_rewards_are_detached():
    pc, pr, rc, rr = (t.requires_grad_() for t in _rand_logps(1))
    losses, chosen_r, rejected_r = dpo_loss(pc, pr, rc, rr, 0.1)
    assert losses.requires_grad
    assert not chosen_r.requires_grad and not rejected_r.requires_grad


def test_dpo_gradient_signs_and_closed_form():
    beta = 0.5
    pc, pr, rc, rr = (t.requires_grad_() for t in _rand_logps(2))
    losses, _, _ = dpo_loss(pc, pr, rc, rr, beta)
    losses.sum().backward()
    h = ((pc - rc) - (pr - rr)).detach().numpy()
    weight = beta / (1.0 + np.exp(beta * h))  # beta * sigma(-beta h), computed with numpy
    assert (pc.grad < 0).all() and (pr.grad > 0).all()  # raise chosen, lower rejected
    np.testing.assert_allclose(pc.grad.numpy(), -weight, rtol=1e-12)
    np.testing.assert_allclose(pr.grad.numpy(), weight, rtol=1e-12)
    np.testing.assert_allclose(rc.grad.numpy(), weight, rtol=1e-12)
    np.testing.assert_allclose(rr.grad.numpy(), -weight, rtol=1e-12)


def test_dpo_gradcheck_with_label_smoothing():
    inputs = tuple(t.requires_grad_() for t in _rand_logps(3, B=4))
    assert torch.autograd.gradcheck(lambda *x: dpo_loss(*x, 0.3, label_smoothing=0.2)[0], inputs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dpo_extreme_inputs_are_finite(dtype):
    # log-probs near -1e4 with small margins, and margins of +-1e4
    pc = torch.tensor([-1e4, -1e4, 0.0, -1e4], dtype=dtype, requires_grad=True)
    pr = torch.tensor([-1e4 + 1, -1e4, -1e4, 0.0], dtype=dtype, requires_grad=True)
    rc = torch.tensor([-1e4, -1e4, 0.0, 0.0], dtype=dtype, requires_grad=True)
    rr = torch.tensor([-1e4, -1e4, 0.0, 0.0], dtype=dtype, requires_grad=True)
    losses, _, _ = dpo_loss(pc, pr, rc, rr, beta=1.0)
    losses.sum().backward()
    for t in (losses, pc.grad, pr.grad, rc.grad, rr.grad):
        assert torch.isfinite(t).all()
    # h = -1, 0, +1e4, -1e4: the loss is ~0 for a huge right margin, ~ -beta h for a huge wrong one
    assert losses[2].item() == pytest.approx(0.0, abs=1e-30)
    assert losses[3].item() == pytest.approx(1e4, rel=1e-6)
    assert pc.grad[3].item() == pytest.approx(-1.0) and pc.grad[2].item() == pytest.approx(0.0, abs=1e-30)
    with np.errstate(over="ignore", divide="ignore"):  # the naive formula fails exactly here
        assert np.isinf(-np.log(1 / (1 + np.exp(np.float64(2e4)))))


def test_label_smoothing_zero_is_plain_dpo_and_positive_keeps_a_floor():
    pc, pr, rc, rr = _rand_logps(4)
    plain, _, _ = dpo_loss(pc, pr, rc, rr, 0.2)
    smoothed0, _, _ = dpo_loss(pc, pr, rc, rr, 0.2, label_smoothing=0.0)
    assert torch.equal(plain, smoothed0)
    zero = torch.zeros(1, dtype=F64)
    huge = torch.tensor([1e4], dtype=F64)
    loss, _, _ = dpo_loss(huge, zero, zero, zero, 1.0, label_smoothing=0.1)
    plain_loss, _, _ = dpo_loss(huge, zero, zero, zero, 1.0)
    assert plain_loss.item() < 1e-300  # plain DPO: pushing the margin further always pays
    assert loss.item() == pytest.approx(0.1 * 1e4, rel=1e-9)  # eps * beta * h: a real penalty


def test_label_smoothing_minimum_is_at_log_odds():
    eps, beta = 0.1, 0.5
    target_h = math.log((1 - eps) / eps) / beta  # the conservative optimum: beta h = log((1-eps)/eps)
    zero = torch.zeros(1, dtype=F64)
    losses = []
    for h in (target_h - 0.01, target_h, target_h + 0.01):
        pc = torch.tensor([h], dtype=F64, requires_grad=True)
        loss, _, _ = dpo_loss(pc, zero, zero, zero, beta, label_smoothing=eps)
        loss.backward()
        losses.append(loss.item())
        if h == target_h:
            assert abs(pc.grad.item()) < 1e-12
    assert losses[1] < losses[0] and losses[1] < losses[2]


@settings(max_examples=200, deadline=None)
@given(
    logps=st.lists(st.floats(-1e4, 0.0), min_size=4, max_size=4),
    beta=st.floats(1e-3, 10.0),
)
def test_dpo_properties(logps, beta):
    pc, pr, rc, rr = (torch.tensor([x], dtype=F64) for x in logps)
    loss = dpo_loss(pc, pr, rc, rr, beta)[0].item()
    swapped = dpo_loss(pr, pc, rr, rc, beta)[0].item()
    bh = beta * ((logps[0] - logps[2]) - (logps[1] - logps[3]))
    assert math.isfinite(loss) and loss >= 0
    # -log sig(bh) + log sig(-bh) = -bh
    assert loss - swapped == pytest.approx(-bh, rel=1e-9, abs=1e-9)
    if -bh < 700:  # where the naive formula does not overflow
        assert loss == pytest.approx(_naive_dpo(*logps[:2], *logps[2:], beta), rel=1e-9, abs=1e-12)


# ----------------------------------------------------------------------------- ipo_loss


def test_ipo_matches_formula_and_reports_tau_scaled_rewards():
    tau = 0.25
    pc, pr, rc, rr = _rand_logps(5)
    losses, chosen_r, rejected_r = ipo_loss(pc, pr, rc, rr, tau)
    h = (pc.numpy() - rc.numpy()) - (pr.numpy() - rr.numpy())
    np.testing.assert_allclose(losses.numpy(), (h - 1 / (2 * tau)) ** 2, rtol=1e-12)
    np.testing.assert_allclose((chosen_r - rejected_r).numpy(), tau * h, rtol=1e-12)
    np.testing.assert_allclose(chosen_r.numpy(), tau * (pc - rc).numpy(), rtol=1e-14)
    assert not chosen_r.requires_grad


@pytest.mark.parametrize("tau", [0.05, 0.5, 2.0])
def test_ipo_minimum_at_half_over_tau(tau):
    zero = torch.zeros(3, dtype=F64)
    target = 1 / (2 * tau)
    pc = torch.tensor([target - 0.1, target, target + 0.1], dtype=F64, requires_grad=True)
    losses, chosen_r, rejected_r = ipo_loss(pc, zero, zero, zero, tau)
    losses.sum().backward()
    np.testing.assert_allclose(losses.detach().numpy(), [0.01, 0.0, 0.01], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(pc.grad.numpy(), [-0.2, 0.0, 0.2], rtol=1e-9, atol=1e-15)  # 2(h - target)
    assert (chosen_r - rejected_r)[1].item() == pytest.approx(0.5)  # tau * margin -> 1/2


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ipo_extreme_inputs_are_finite(dtype):
    pc = torch.tensor([-1e4, 0.0], dtype=dtype, requires_grad=True)
    pr = torch.tensor([-1e4, -1e4], dtype=dtype, requires_grad=True)
    zero = torch.zeros(2, dtype=dtype)
    losses, _, _ = ipo_loss(pc, pr, zero, zero, tau=0.1)
    losses.sum().backward()
    assert torch.isfinite(losses).all() and torch.isfinite(pc.grad).all() and torch.isfinite(pr.grad).all()


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("fn, name", [(dpo_loss, "beta"), (ipo_loss, "tau")])
@pytest.mark.parametrize("bad", [0.0, -0.1, float("nan"), float("inf")])
def test_bad_coefficient_is_rejected_with_its_value(fn, name, bad):
    pc, pr, rc, rr = _rand_logps(6)
    with pytest.raises(ValueError, match=rf"{name}={bad!r}.*finite number > 0"):
        fn(pc, pr, rc, rr, bad)


@pytest.mark.parametrize("bad", [-0.1, 0.5, 0.7, float("nan")])
def test_bad_label_smoothing_is_rejected(bad):
    pc, pr, rc, rr = _rand_logps(7)
    with pytest.raises(ValueError, match=rf"label_smoothing={bad!r}.*\[0, 0.5\)"):
        dpo_loss(pc, pr, rc, rr, 0.1, label_smoothing=bad)


@pytest.mark.parametrize("fn", [dpo_loss, ipo_loss])
def test_shape_mismatch_and_types_are_rejected(fn):
    pc, pr, rc, rr = _rand_logps(8)
    with pytest.raises(ValueError, match=r"ref_rejected_logps has shape \(7,\), expected \(8,\)"):
        fn(pc, pr, rc, rr[:7], 0.1)
    with pytest.raises(TypeError, match=r"policy_rejected_logps must have a floating dtype.*torch.int64"):
        fn(pc, pr.long(), rc, rr, 0.1)
    with pytest.raises(TypeError, match=r"policy_chosen_logps must be a torch.Tensor.*list"):
        fn(pc.tolist(), pr, rc, rr, 0.1)


# ----------------------------------------------------------------------------- sequence_logps


def _hand_sequence_logps(logits, labels, mask):
    """Loop over positions: token t+1 is scored by log_softmax(logits[t])."""
    out = []
    for b in range(logits.shape[0]):
        total = 0.0
        for t in range(logits.shape[1] - 1):
            if mask[b, t + 1]:
                total += torch.log_softmax(logits[b, t], dim=-1)[labels[b, t + 1]].item()
        out.append(total)
    return np.array(out)


def _seq_batch(seed=0, B=3, T=7, V=5):
    g = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(B, T, V, generator=g, dtype=F64)
    labels = torch.randint(V, (B, T), generator=g)
    mask = torch.zeros(B, T, dtype=torch.bool)
    mask[0, 2:5] = True  # prompt 0..1, response 2..4, padding 5..6
    mask[1, 1:] = True  # one-token prompt, response to the end
    mask[2, 4:6] = True
    return logits, labels, mask


def test_sequence_logps_matches_hand_loop():
    logits, labels, mask = _seq_batch()
    got = sequence_logps(logits, labels, mask)
    assert got.shape == (3,)
    np.testing.assert_allclose(got.numpy(), _hand_sequence_logps(logits, labels, mask), rtol=1e-12)
    # a 0/1 integer mask means the same as a bool mask
    np.testing.assert_allclose(sequence_logps(logits, labels, mask.long()).numpy(), got.numpy(), rtol=0)


def test_sequence_logps_ignores_masked_out_labels_and_logits():
    logits, labels, mask = _seq_batch(1)
    expected = sequence_logps(logits, labels, mask)
    labels2 = torch.where(mask, labels, -100)  # HF-style ignore index, would crash a plain gather
    logits2 = logits.clone()
    unused = ~mask.roll(-1, dims=1)  # rows that predict masked-out tokens (and the last row)
    logits2[unused] = 1e4
    logits2[..., 0][unused] = float("-inf")  # a banned token id 0: log-prob -inf, must not give nan
    logits2[:, -1] = float("nan")  # the last logit predicts nothing
    got = sequence_logps(logits2, labels2, mask)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-12)
    # and changing a scored position does change the result (the check above can fail)
    logits2[0, 2, labels[0, 3]] += 1.0
    assert not torch.allclose(sequence_logps(logits2, labels2, mask), expected)


def test_sequence_logps_gradient_only_reaches_scored_positions():
    logits, labels, mask = _seq_batch(2)
    logits.requires_grad_()
    sequence_logps(logits, labels, mask).sum().backward()
    used = mask.roll(-1, dims=1)
    used[:, -1] = False
    assert (logits.grad[~used] == 0).all()
    assert (logits.grad[used].abs().sum(-1) > 0).all()


def test_sequence_logps_errors():
    logits, labels, mask = _seq_batch()
    with pytest.raises(ValueError, match=r"logits has shape \(3, 7\), expected 3 dimensions"):
        sequence_logps(logits[..., 0], labels, mask)
    with pytest.raises(ValueError, match=r"labels has shape \(3, 6\), expected \(3, 7\)"):
        sequence_logps(logits, labels[:, :6], mask)
    with pytest.raises(ValueError, match=r"mask has shape \(2, 7\), expected \(3, 7\)"):
        sequence_logps(logits, labels, mask[:2])
    with pytest.raises(TypeError, match=r"labels must be an integer.*float64"):
        sequence_logps(logits, labels.double(), mask)
    with pytest.raises(ValueError, match=r"only 0 and 1.*0.5"):
        sequence_logps(logits, labels, mask * 0.5)
    with pytest.raises(ValueError, match=r"\[0, 5\), got \[-100\]"):
        sequence_logps(logits, torch.full_like(labels, -100), mask)


# ----------------------------------------------------------------------------- plackett_luce_loss


def test_plackett_luce_with_two_items_is_dpo():
    pc, pr, rc, rr = _rand_logps(9, B=16)
    for beta in (0.1, 1.0, 4.0):
        pl, rewards = plackett_luce_loss(torch.stack([pc, pr], 1), torch.stack([rc, rr], 1), beta)
        dpo, chosen_r, rejected_r = dpo_loss(pc, pr, rc, rr, beta)
        np.testing.assert_allclose(pl.numpy(), dpo.numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(rewards.numpy(), torch.stack([chosen_r, rejected_r], 1).numpy(), rtol=1e-14)


def test_plackett_luce_matches_naive_product_of_factors():
    g = torch.Generator().manual_seed(10)
    policy = -10 * torch.rand(5, 4, generator=g, dtype=F64)
    ref = -10 * torch.rand(5, 4, generator=g, dtype=F64)
    beta = 0.7
    losses, rewards = plackett_luce_loss(policy, ref, beta)
    assert losses.shape == (5,) and rewards.shape == (5, 4) and not rewards.requires_grad
    for b in range(5):
        u = [beta * (float(policy[b, k]) - float(ref[b, k])) for k in range(4)]
        naive = -sum(math.log(math.exp(u[k]) / sum(math.exp(x) for x in u[k:])) for k in range(4))
        assert losses[b].item() == pytest.approx(naive, rel=1e-12)
        # the same number is minus the Plackett-Luce log-probability of the ranking 0, 1, 2, 3
        assert losses[b].item() == pytest.approx(-ranking_log_prob(u, [0, 1, 2, 3]), rel=1e-12)


def test_plackett_luce_is_invariant_to_a_per_row_shift():
    g = torch.Generator().manual_seed(11)
    policy = -10 * torch.rand(6, 4, generator=g, dtype=F64)
    ref = -10 * torch.rand(6, 4, generator=g, dtype=F64)
    shift = 50 * torch.randn(6, 1, generator=g, dtype=F64)  # a log Z(x) per prompt
    base, _ = plackett_luce_loss(policy, ref, 0.5)
    shifted, _ = plackett_luce_loss(policy + shift, ref, 0.5)
    np.testing.assert_allclose(shifted.numpy(), base.numpy(), rtol=1e-10)
    # a shift that differs between columns is not a Z(x) and must change the loss
    tilted, _ = plackett_luce_loss(policy + torch.arange(4.0, dtype=F64), ref, 0.5)
    assert not np.allclose(tilted.numpy(), base.numpy())


def test_plackett_luce_gradcheck():
    g = torch.Generator().manual_seed(12)
    policy = (-5 * torch.rand(3, 5, generator=g, dtype=F64)).requires_grad_()
    ref = (-5 * torch.rand(3, 5, generator=g, dtype=F64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda p, r: plackett_luce_loss(p, r, 0.8)[0], (policy, ref))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_plackett_luce_extreme_inputs_are_finite(dtype):
    policy = torch.tensor(
        [[-1e4, -1e4 + 1, -1e4 + 2, -1e4], [0.0, -1e4, 0.0, -1e4], [-1e4, 0.0, -1e4, 0.0]],
        dtype=dtype, requires_grad=True,
    )
    ref = torch.tensor([[-1e4] * 4, [0.0] * 4, [0.0] * 4], dtype=dtype)
    losses, _ = plackett_luce_loss(policy, ref, beta=1.0)
    losses.sum().backward()
    assert torch.isfinite(losses).all() and torch.isfinite(policy.grad).all()
    # row 2, u = (-1e4, 0, -1e4, 0): factors give 1e4 + ln 2, ln 2, 1e4, 0
    assert losses[2].item() == pytest.approx(2e4 + 2 * math.log(2), rel=1e-6)


def test_plackett_luce_float32_keeps_precision_at_large_log_ratios():
    # log-ratios near -1e4, where float32 has a spacing of ~1e-3; the loss is log 24 + small terms
    offsets = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.5, 1.0, 2.0, 3.0]], dtype=F64)
    policy, ref = offsets - 1e4, torch.zeros(2, 4, dtype=F64)
    want, _ = plackett_luce_loss(policy, ref, 1.0)
    got, _ = plackett_luce_loss(policy.float(), ref.float(), 1.0)
    assert want[0].item() == pytest.approx(math.log(24), rel=1e-12)
    np.testing.assert_allclose(got.double().numpy(), want.numpy(), rtol=1e-6)


def test_plackett_luce_errors():
    x = torch.zeros(4, 3, dtype=F64)
    with pytest.raises(ValueError, match=r"shape \(4,\), expected 2 dimensions"):
        plackett_luce_loss(x[:, 0], x[:, 0], 0.1)
    with pytest.raises(ValueError, match=r"K=1 responses per row, expected K >= 2"):
        plackett_luce_loss(x[:, :1], x[:, :1], 0.1)
    with pytest.raises(ValueError, match=r"ref_logps has shape \(4, 2\), expected \(4, 3\)"):
        plackett_luce_loss(x, x[:, :2], 0.1)
    with pytest.raises(ValueError, match=r"beta=-1.0 is invalid"):
        plackett_luce_loss(x, x, -1.0)
    with pytest.raises(TypeError, match=r"ref_logps must have a floating dtype"):
        plackett_luce_loss(x, x.long(), 0.1)
