r"""Exercise checkers for chapter 3, "Skipping the reward model: the DPO loss".

Three exercises:

- :func:`check_loss_value`: the DPO loss (Eq. 7 of Rafailov et al. 2023, arXiv 2305.18290) of one pair,
  as a number;
- :func:`check_implicit_reward`: a function computing the implicit reward
  :math:`\beta \log \pi_\theta / \pi_{ref}`, compared with :func:`dpo_teach.losses.dpo_loss` on random inputs;
- :func:`check_normalizer`: the offset :math:`g(x) = -\beta \log Z(x)` that moves a reward into DPO form
  (Theorem 1, Eq. 8), as a SymPy expression, proved with :func:`dpo_teach.derivation.check_step`.

Every checker returns a :class:`~dpo_teach.exercises.Feedback` and never raises on a wrong answer.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import sympy as sp
import torch
from sympy.core.function import AppliedUndef

from dpo_teach.derivation import StepError, check_step
from dpo_teach.exercises import Feedback, as_number, known_slip, missing
from dpo_teach.losses import dpo_loss

__all__ = ["LOSS_PAIR", "check_loss_value", "check_implicit_reward", "theorem1_symbols", "check_normalizer"]

# Exercise 1: the four log-probabilities and beta given in the notebook.
LOSS_PAIR = {"policy_chosen": -12.0, "policy_rejected": -15.0, "ref_chosen": -14.0, "ref_rejected": -12.0,
             "beta": 0.1}
_LOSS_TOL = 5e-4  # "4 decimals are enough"


def _pair_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    """The DPO loss of one pair, from the package's dpo_loss (Eq. 7)."""
    t = [torch.tensor([v], dtype=torch.float64) for v in (policy_chosen, policy_rejected, ref_chosen, ref_rejected)]
    return dpo_loss(*t, beta)[0].item()


def check_loss_value(answer) -> Feedback:
    """Exercise 1: the DPO loss of the pair in :data:`LOSS_PAIR` (a number)."""
    name = "loss_value"
    value, problem = as_number(name, answer)
    if problem is not None:
        return problem
    p = LOSS_PAIR
    right = _pair_loss(p["policy_chosen"], p["policy_rejected"], p["ref_chosen"], p["ref_rejected"], p["beta"])
    if abs(value - right) <= _LOSS_TOL:
        return Feedback(name, True, f"{right:.4f}: h = 2 - (-3) = 5, beta h = 0.5, loss = log(1 + e^-0.5)")
    # common slips, each recognised by the value it produces
    slips = [
        (math.log(2), "that is the loss at h = 0 (initialization); compute the log-ratio margin h first"),
        (_pair_loss(p["policy_rejected"], p["policy_chosen"], p["ref_rejected"], p["ref_chosen"], p["beta"]),
         "chosen and rejected are swapped: the margin should be positive here"),
        (_pair_loss(p["policy_chosen"], p["policy_rejected"], p["ref_chosen"], p["ref_rejected"], 1.0),
         "beta seems to be missing: the loss is -log sigma(beta h)"),
        (_pair_loss(p["policy_chosen"], p["policy_rejected"], 0.0, 0.0, p["beta"]),
         "the reference log-probabilities seem to be missing: h uses log(pi_theta / pi_ref) for both responses"),
        (math.log(1 + math.exp(-0.5)) / math.log(10), "use the natural logarithm, not log10"),
    ]
    slip = known_slip(name, value, slips, _LOSS_TOL)
    if slip is not None:
        return slip
    return Feedback(name, False, f"{value:.4f} is not the loss; compute h = log(pi_w/ref_w) - log(pi_l/ref_l), "
                                 "then -log sigma(beta h)")


def _as_tensor(out):
    if isinstance(out, torch.Tensor):
        return out.detach().to(torch.float64)
    return torch.as_tensor(out, dtype=torch.float64)


def check_implicit_reward(answer) -> Feedback:
    """Exercise 2: a function ``implicit_reward(policy_logps, ref_logps, beta)`` returning beta log(pi/pi_ref).

    Compared with the chosen rewards of :func:`dpo_teach.losses.dpo_loss` on random tensors of a few shapes.
    """
    name = "implicit_reward"
    if answer is None:
        return missing(name)
    if not callable(answer):
        return Feedback(name, False, f"expected a function implicit_reward(policy_logps, ref_logps, beta), "
                                     f"got {type(answer).__name__}")
    gen = torch.Generator().manual_seed(3)
    for shape, beta in (((5,), 0.1), ((2, 3), 0.7), ((1,), 2.5)):
        policy = -10 * torch.rand(shape, generator=gen, dtype=torch.float64)
        ref = -10 * torch.rand(shape, generator=gen, dtype=torch.float64)
        _, expected, _ = dpo_loss(policy, policy, ref, ref, beta)
        try:
            got = _as_tensor(answer(policy.clone(), ref.clone(), beta))
        except Exception as err:  # the reader's code may fail in any way: report it, do not raise
            return Feedback(name, False, f"calling your function raised {type(err).__name__}: {err}")
        if tuple(got.shape) != tuple(shape):
            return Feedback(name, False, f"for inputs of shape {shape} your function returned shape "
                                         f"{tuple(got.shape)}; it should work elementwise")
        if torch.allclose(got, expected, atol=1e-9):
            continue
        if torch.allclose(got, expected / beta, atol=1e-9):
            return Feedback(name, False, "you return log(pi/pi_ref); multiply by beta")
        if torch.allclose(got, -expected, atol=1e-9):
            return Feedback(name, False, "the sign is flipped: it is log pi_theta minus log pi_ref")
        return Feedback(name, False, f"wrong values for beta = {beta}: expected "
                                     f"{[round(v, 4) for v in expected.flatten().tolist()[:3]]}..., got "
                                     f"{[round(v, 4) for v in got.flatten().tolist()[:3]]}...")
    return Feedback(name, True, "matches the rewards returned by dpo_loss on random inputs")


def theorem1_symbols() -> SimpleNamespace:
    r"""The SymPy symbols of exercise 3 (the same notation as section 3.6 of the chapter).

    ``beta`` (> 0), the prompt ``x``, a response ``y``, the summation index ``j``, the number of
    responses ``n``, ``r[j]`` = r(x, j), ``pi_ref[j]`` = pi_ref(j | x) (> 0), and ``Z`` = Z(x) (> 0),
    which stands for the sum ``partition`` = :math:`\sum_{j=1}^n \pi_{ref}(j|x) e^{r(x,j)/\beta}`.
    """
    beta = sp.Symbol("beta", positive=True)
    x = sp.Symbol("x")
    y = sp.Symbol("y", integer=True, positive=True)
    j = sp.Symbol("j", integer=True, positive=True)
    n = sp.Symbol("n", integer=True, positive=True)
    r = sp.IndexedBase("r", real=True)
    pi_ref = sp.IndexedBase(r"\pi_{\mathrm{ref}}", positive=True)
    Z = sp.Function("Z", positive=True)(x)
    partition = sp.Sum(pi_ref[j] * sp.exp(r[j] / beta), (j, 1, n))
    return SimpleNamespace(beta=beta, x=x, y=y, j=j, n=n, r=r, pi_ref=pi_ref, Z=Z, partition=partition)


def check_normalizer(answer) -> Feedback:
    r"""Exercise 3: g(x) with r(x, y) + g(x) = beta log(pi_r(y|x) / pi_ref(y|x)) for every y (Theorem 1).

    The answer may use ``Z`` or the explicit sum; it must not depend on the response ``y``.
    """
    name = "normalizer"
    if answer is None:
        return missing(name)
    s = theorem1_symbols()
    ours = {"beta": s.beta, "Z": s.Z, "x": s.x, "y": s.y, "j": s.j, "n": s.n}
    if callable(answer) and not isinstance(answer, sp.Basic):
        return Feedback(name, False, f"expected a SymPy expression such as an expression in s.beta and s.Z, "
                                     f"got a {type(answer).__name__}")
    try:
        # locals: in a string, a bare "beta" would otherwise parse as SymPy's beta function
        g = sp.sympify(answer, locals=ours)
    except (sp.SympifyError, TypeError, ValueError, AttributeError, SyntaxError):
        return Feedback(name, False, f"expected a SymPy expression, got {answer!r}")
    if not isinstance(g, sp.Expr):
        return Feedback(name, False, f"expected a SymPy expression, got {type(g).__name__}")
    # the reader's own symbols (perhaps without assumptions) are matched to ours by name
    g = g.xreplace({sym: ours[sym.name] for sym in g.free_symbols
                    if isinstance(sym, sp.Symbol) and sym.name in ours})
    g = g.xreplace({z: s.Z for z in g.atoms(AppliedUndef) if z.func.__name__ == "Z"})  # their Z(x)
    g = g.xreplace({s.Z: s.partition})  # xreplace: subs refuses to put the bound index j into a Sum
    if s.y in g.free_symbols:
        return Feedback(name, False, "your g depends on the response y; the offset may depend on the prompt only")
    pi_r = s.pi_ref[s.y] * sp.exp(s.r[s.y] / s.beta) / s.partition  # Eq. 4
    target = s.beta * sp.log(pi_r / s.pi_ref[s.y])
    proof = _proof_or_none(s.r[s.y] + g, target)
    if proof is not None:
        return Feedback(name, True, f"g(x) = -beta log Z(x), the offset of Eq. 8 ({proof})")
    if _proof_or_none(s.r[s.y] - g, target) is not None:
        hint = "the sign is flipped"
    elif _proof_or_none(s.r[s.y] + s.beta * g, target) is not None:
        hint = "the offset is missing a factor beta"
    elif g.has(sp.Sum) and not g.has(sp.log):
        hint = "the reward is on the log scale: you need the logarithm of the partition function"
    else:
        hint = "compare with Eq. 5: r = beta log(pi_r/pi_ref) + beta log Z(x)"
    return Feedback(name, False, f"the checker could not prove r + g = beta log(pi_r/pi_ref); {hint}")


def _proof_or_none(before, after):
    try:
        return check_step(before, after)
    except StepError:
        return None
