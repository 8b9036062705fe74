r"""Preference losses as pure functions of per-sequence log-probabilities.

Taught in chapters 3 (the DPO loss, Eq. 7 of Rafailov et al. 2023, arXiv 2305.18290, and its
conservative label-smoothed variant), 4 (Plackett-Luce rankings, Eq. 18-20 of the same paper) and
5 (IPO, Eq. 17 of Azar et al. 2023, arXiv 2310.12036).

Every loss takes log-probabilities :math:`\log \pi(y \mid x)` already summed over the response
tokens (see :func:`sequence_logps`) and returns *unreduced* per-example losses together with the
implicit rewards, detached, so that a training loop can log ``rewards/chosen`` and
``rewards/rejected`` without keeping the graph alive. Nothing here knows about models or configs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["dpo_loss", "ipo_loss", "plackett_luce_loss", "sequence_logps"]


def _check_float_tensors(**tensors: object) -> tuple[int, ...]:
    """Check that every argument is a floating-point tensor and that all shapes agree."""
    shape = None
    first = None
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of floating dtype, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(
                f"{name} must have a floating dtype (float32 or float64), got {t.dtype}; "
                f"convert it with .double() or .float()"
            )
        if shape is None:
            shape, first = tuple(t.shape), name
        elif tuple(t.shape) != shape:
            raise ValueError(
                f"{name} has shape {tuple(t.shape)}, expected {shape} (the shape of {first}); "
                f"all log-prob tensors must have the same shape"
            )
    return shape


def _check_positive(name: str, value: object) -> float:
    """Return ``value`` as a float, or raise if it is not a finite number > 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name}={value!r} is invalid: expected a finite number > 0")
    return v


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float,
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The DPO loss, Eq. 7 of Rafailov et al. (2023).

    With :math:`h = \log\frac{\pi_\theta(y_w|x)}{\pi_{ref}(y_w|x)}
    - \log\frac{\pi_\theta(y_l|x)}{\pi_{ref}(y_l|x)}`,

    .. math:: L = -\log \sigma(\beta h).

    With ``label_smoothing`` :math:`\varepsilon > 0` (conservative DPO: each label is assumed
    flipped with probability :math:`\varepsilon`) the loss is the cross-entropy against the soft
    label, :math:`L = -(1-\varepsilon)\log\sigma(\beta h) - \varepsilon \log\sigma(-\beta h)`,
    which is minimised at the finite margin :math:`\beta h = \log\frac{1-\varepsilon}{\varepsilon}`.

    Args:
        policy_chosen_logps: :math:`\log\pi_\theta(y_w|x)`, summed over response tokens. Shape: (B,)
        policy_rejected_logps: :math:`\log\pi_\theta(y_l|x)`. Shape: (B,)
        ref_chosen_logps: :math:`\log\pi_{ref}(y_w|x)`. Shape: (B,)
        ref_rejected_logps: :math:`\log\pi_{ref}(y_l|x)`. Shape: (B,)
        beta: KL-penalty coefficient :math:`\beta > 0`.
        label_smoothing: flip probability :math:`\varepsilon \in [0, 0.5)`; 0 gives plain DPO.

    Returns:
        ``(losses, chosen_rewards, rejected_rewards)``, each Shape: (B,). ``losses`` is not
        reduced. The rewards are the implicit rewards :math:`\beta \log\frac{\pi_\theta}{\pi_{ref}}`,
        detached. (Any shape works elementwise, as long as all four inputs share it.)
    """
    _check_float_tensors(
        policy_chosen_logps=policy_chosen_logps,
        policy_rejected_logps=policy_rejected_logps,
        ref_chosen_logps=ref_chosen_logps,
        ref_rejected_logps=ref_rejected_logps,
    )
    beta = _check_positive("beta", beta)
    try:
        eps = float(label_smoothing)
    except (TypeError, ValueError):
        raise TypeError(f"label_smoothing must be a number, got {label_smoothing!r}") from None
    if not (0.0 <= eps < 0.5):
        raise ValueError(
            f"label_smoothing={label_smoothing!r} is invalid: expected a number in [0, 0.5) "
            f"(0 is plain DPO; 0.5 would make the labels pure noise)"
        )

    chosen_logratios = policy_chosen_logps - ref_chosen_logps  # (B,)
    rejected_logratios = policy_rejected_logps - ref_rejected_logps  # (B,)
    h = chosen_logratios - rejected_logratios  # (B,)  h = log-ratio margin

    # Eq. 7: L = -log sigma(beta * h); logsigmoid is stable where log(sigmoid()) gives -inf
    losses = -F.logsigmoid(beta * h)
    if eps > 0:
        # conservative DPO: L = -(1 - eps) log sigma(beta h) - eps log sigma(-beta h)
        losses = (1 - eps) * losses - eps * F.logsigmoid(-beta * h)

    chosen_rewards = beta * chosen_logratios.detach()  # r(x, y_w) = beta log pi/pi_ref (Eq. 5)
    rejected_rewards = beta * rejected_logratios.detach()  # r(x, y_l)
    return losses, chosen_rewards, rejected_rewards


def ipo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    tau: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The IPO loss, Eq. 17 of Azar et al. (2023).

    With the same log-ratio margin :math:`h` as in :func:`dpo_loss`,

    .. math:: L = \left(h - \frac{1}{2\tau}\right)^2 .

    Unlike DPO, whose loss keeps falling as :math:`h \to \infty`, IPO regresses :math:`h` onto the
    finite target :math:`1/(2\tau)`, where the loss is zero.

    The log-probs are used as given: pass sums over tokens for the paper's sequence-level
    :math:`h` (some libraries pass token averages for IPO; this function does not choose).

    Args:
        policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps:
            as in :func:`dpo_loss`. Shape: (B,)
        tau: regularisation coefficient :math:`\tau > 0` (it plays the role of DPO's beta).

    Returns:
        ``(losses, chosen_rewards, rejected_rewards)``, each Shape: (B,). The rewards are reported
        on the same scale as DPO's, :math:`\tau \log\frac{\pi_\theta}{\pi_{ref}}`, detached, so the
        logged metrics mean the same thing for both losses. Their margin is :math:`\tau h`, which
        IPO drives towards :math:`1/2`.
    """
    _check_float_tensors(
        policy_chosen_logps=policy_chosen_logps,
        policy_rejected_logps=policy_rejected_logps,
        ref_chosen_logps=ref_chosen_logps,
        ref_rejected_logps=ref_rejected_logps,
    )
    tau = _check_positive("tau", tau)

    chosen_logratios = policy_chosen_logps - ref_chosen_logps  # (B,)
    rejected_logratios = policy_rejected_logps - ref_rejected_logps  # (B,)
    h = chosen_logratios - rejected_logratios  # (B,)

    losses = (h - 1 / (2 * tau)) ** 2  # Eq. 17 (IPO): L = (h - 1/(2 tau))^2

    chosen_rewards = tau * chosen_logratios.detach()
    rejected_rewards = tau * rejected_logratios.detach()
    return losses, chosen_rewards, rejected_rewards


def plackett_luce_loss(
    policy_logps: torch.Tensor,
    ref_logps: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Listwise DPO loss for full rankings under the Plackett-Luce model (Eq. 20).

    Column :math:`k` holds the :math:`k`-th best response (column 0 is the best). With implicit
    rewards :math:`u_k = \beta \log\frac{\pi_\theta(y_k|x)}{\pi_{ref}(y_k|x)}`,

    .. math:: L = -\sum_{k=1}^{K} \log \frac{\exp(u_k)}{\sum_{j=k}^{K} \exp(u_j)} ,

    the negative log-probability of the observed ranking (Eq. 18 with rewards :math:`u`).
    The partition function :math:`Z(x)` cancels: adding a constant to a row of ``policy_logps``
    leaves the loss unchanged. For :math:`K = 2` this is exactly :func:`dpo_loss`.

    Args:
        policy_logps: :math:`\log\pi_\theta(y_k|x)`, columns in ranked order. Shape: (B, K)
        ref_logps: :math:`\log\pi_{ref}(y_k|x)`, same order. Shape: (B, K)
        beta: KL-penalty coefficient :math:`\beta > 0`.

    Returns:
        ``(losses, rewards)``: ``losses`` Shape: (B,), unreduced; ``rewards`` Shape: (B, K), the
        implicit rewards :math:`u`, detached.
    """
    shape = _check_float_tensors(policy_logps=policy_logps, ref_logps=ref_logps)
    if len(shape) != 2:
        raise ValueError(
            f"policy_logps has shape {shape}, expected 2 dimensions (B, K) with the K responses "
            f"of each prompt in ranked order; for a single prompt use policy_logps[None]"
        )
    if shape[1] < 2:
        raise ValueError(f"policy_logps has K={shape[1]} responses per row, expected K >= 2")
    beta = _check_positive("beta", beta)

    u = beta * (policy_logps - ref_logps)  # (B, K)  implicit rewards
    # Subtracting each row's max changes nothing mathematically (Z-invariance) but keeps the
    # numbers near 0, where float32 is most precise.
    u_shifted = u - u.amax(dim=-1, keepdim=True).detach()  # (B, K)
    # tail[:, k] = log sum_{j >= k} exp(u_j): a cumulative logsumexp from the right
    tail = torch.logcumsumexp(u_shifted.flip(-1), dim=-1).flip(-1)  # (B, K)
    # Eq. 20: L = -sum_k log( exp(u_k) / sum_{j>=k} exp(u_j) ); the k = K term is log 1 = 0
    losses = -(u_shifted - tail).sum(dim=-1)  # (B,)
    return losses, u.detach()


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    r"""Sum of the log-probabilities of the response tokens of each sequence.

    Convention (the causal language-model shift): ``logits[:, t]`` is the model's prediction for
    the *next* token, ``labels[:, t + 1]``. So ``logits[:, :-1]`` is scored against
    ``labels[:, 1:]``, selected by ``mask[:, 1:]``; ``logits[:, -1]`` and ``mask[:, 0]`` are not
    used (no logit predicts the first token).

    .. math:: \log\pi(y|x) = \sum_{t:\ \mathrm{mask}_{t+1}} \log \mathrm{softmax}(\mathrm{logits}_t)[\mathrm{labels}_{t+1}]

    The result is a *sum*, not a token average: that is what Eq. 7 needs.

    Args:
        logits: unnormalised next-token scores. Shape: (B, T, V)
        labels: token ids (int64). Where ``mask`` is 0 they may hold anything, e.g. -100.
            Shape: (B, T)
        mask: 1 (or True) on the response tokens to score, 0 elsewhere. Shape: (B, T)

    Returns:
        Summed log-probabilities. Shape: (B,)
    """
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise TypeError(f"logits must be a floating-point torch.Tensor, got {_describe(logits)}")
    if logits.dim() != 3:
        raise ValueError(f"logits has shape {tuple(logits.shape)}, expected 3 dimensions (B, T, V)")
    B, T, V = logits.shape
    if not isinstance(labels, torch.Tensor) or labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be an integer torch.Tensor (int64), got {_describe(labels)}")
    if tuple(labels.shape) != (B, T):
        raise ValueError(f"labels has shape {tuple(labels.shape)}, expected {(B, T)} to match logits (B, T, V)")
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor of 0/1 or bool, got {_describe(mask)}")
    if tuple(mask.shape) != (B, T):
        raise ValueError(f"mask has shape {tuple(mask.shape)}, expected {(B, T)} to match logits (B, T, V)")
    if mask.dtype != torch.bool and not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError(f"mask must contain only 0 and 1 (or be bool), got values {mask.unique().tolist()}")

    target = labels[:, 1:].long()  # (B, T-1)  token predicted by logits[:, :-1]
    keep = mask[:, 1:].bool()  # (B, T-1)
    bad = keep & ((target < 0) | (target >= V))
    if bool(bad.any()):
        raise ValueError(
            f"labels at masked-in positions must be token ids in [0, {V}), got "
            f"{sorted(set(target[bad].tolist()))[:5]}; set mask to 0 where labels are padding or -100"
        )
    safe_target = torch.where(keep, target, 0)  # (B, T-1)  any valid id where masked out
    pred = logits[:, :-1]  # (B, T-1, V)
    # log softmax(logits)[label] = logits[label] - logsumexp(logits), without the (B, T-1, V) copy
    token_logps = pred.gather(-1, safe_target.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(pred, dim=-1)
    # where() rather than a product: a masked-out -inf must not turn into nan
    return torch.where(keep, token_logps, 0.0).sum(dim=-1)  # (B,)


def _describe(x: object) -> str:
    """Short description of an argument for error messages."""
    if isinstance(x, torch.Tensor):
        return f"a tensor of dtype {x.dtype}"
    return type(x).__name__
