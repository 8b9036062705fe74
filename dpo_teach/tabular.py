r"""A tabular softmax policy on the bandit problem, and a small loop that trains it (chapters 4-6).

The policy has one logit per (prompt, response): :math:`\pi_\theta(y \mid x) = \mathrm{softmax}(\theta_{x,:})_y`,
a float64 table of shape (X, Y). It is the simplest policy that can represent *every* distribution, so
whatever it converges to is what the loss asks for, not what a network architecture allows.

:func:`train_tabular` fits it with a preference loss from :mod:`dpo_teach.losses` (or any function with the
same signature) and returns a plain log: a list of dicts with the metric names of TRL and the DPO reference
code (``rewards/chosen``, ``rewards/rejected``, ``rewards/margins``, ``rewards/accuracies``,
``logps/chosen``, ``logps/rejected``, ``loss``). The data decide how the loss is called:

- :class:`dpo_teach.bandit.Pairs` -> ``loss_fn(policy_chosen_logps, policy_rejected_logps,
  ref_chosen_logps, ref_rejected_logps, beta)`` returning ``(losses, chosen_rewards, rejected_rewards)``
  (like ``dpo_loss``);
- :class:`Rankings` -> ``loss_fn(policy_logps, ref_logps, beta)`` with (N, K) inputs, best first, returning
  ``(losses, rewards)`` (like ``plackett_luce_loss``). In the log, "chosen" is the best-ranked response
  and "rejected" the worst-ranked one.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
from scipy.sparse.csgraph import connected_components

from dpo_teach.bandit import Pairs, Problem, check_beta, check_policy
from dpo_teach.rankings import one_pair_from_ranking, pairs_from_rankings, sample_rankings

__all__ = [
    "TabularPolicy", "TrainConfig", "TrainLog", "train_tabular", "config_dict",
    "Rankings", "sample_ranked_responses", "one_pair_per_ranking", "all_pairs_per_ranking", "has_finite_minimizer",
    "stack_runs", "unstack",
]


# ------------------------------------------------------------ the policy ----------------------

class TabularPolicy(torch.nn.Module):
    r"""One logit per (prompt, response); :math:`\pi_\theta(\cdot \mid x) = \mathrm{softmax}(\theta_{x,:})`.

    ``logits`` is a float64 table of shape (X, Y); it becomes an ``nn.Parameter`` when ``trainable``
    (the default) and stays a plain tensor otherwise.
    """

    def __init__(self, logits, trainable: bool = True):
        super().__init__()
        t = torch.as_tensor(np.asarray(logits.detach() if isinstance(logits, torch.Tensor) else logits),
                            dtype=torch.float64).clone()
        if t.dim() != 2 or t.shape[1] < 2:
            raise ValueError(f"logits must be a table of shape (X, Y) with Y >= 2, got shape {tuple(t.shape)}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError("logits contain non-finite values (nan or inf)")
        if trainable:
            self.logits = torch.nn.Parameter(t)
        else:
            self.register_buffer("logits", t)

    @classmethod
    def from_probs(cls, probs, trainable: bool = True) -> "TabularPolicy":
        """The policy equal to ``probs`` (X, Y), e.g. pi_ref: logits = log probs (all must be > 0)."""
        p = check_policy("probs", probs)
        if np.any(p <= 0):
            raise ValueError(f"probs must be > 0 everywhere to take logits (min {p.min():.3g})")
        return cls(np.log(p), trainable=trainable)

    @property
    def shape(self):
        return tuple(self.logits.shape)

    def log_probs(self) -> torch.Tensor:
        r""":math:`\log \pi_\theta(y \mid x)`, differentiable. Shape: (X, Y)"""
        return torch.log_softmax(self.logits, dim=-1)

    def probs(self) -> np.ndarray:
        """pi_theta(y|x) as a NumPy float64 table, detached. Shape: (X, Y)"""
        return torch.softmax(self.logits.detach(), dim=-1).numpy()


# ------------------------------------------------------------ ranked data ---------------------

@dataclass(frozen=True)
class Rankings:
    """Ranked responses: for each i, ``responses[i]`` lists K response ids for ``prompt[i]``, best first."""

    prompt: np.ndarray     # (N,) int64
    responses: np.ndarray  # (N, K) int64, column 0 is the best-ranked response

    def __len__(self):
        return len(self.prompt)


def sample_ranked_responses(problem: Problem, n: int, K: int, *, seed: int = 0) -> Rankings:
    r"""``n`` annotated prompts: x uniform, K distinct responses drawn from pi_ref(.|x) without replacement,
    ranked by Plackett-Luce with scores r(x, y) (Eq. 18; Gumbel-perturbed rewards sorted, chapter 4).
    """
    ref = check_policy("ref_probs", problem.ref_probs)
    X, Y = ref.shape
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int (annotated prompts), got {n!r}")
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or not 2 <= K <= Y:
        raise ValueError(f"K must be an int with 2 <= K <= {Y} (the number of responses), got {K!r}")
    if np.any((ref > 0).sum(axis=1) < K):
        raise ValueError(f"every prompt needs at least K = {K} responses with pi_ref > 0")
    gen = torch.Generator().manual_seed(int(seed))
    prompt = torch.randint(X, (int(n),), generator=gen)  # (n,)
    ref_t = torch.as_tensor(ref)  # (X, Y)
    shown = torch.multinomial(ref_t[prompt], int(K), replacement=False, generator=gen)  # (n, K) from pi_ref
    scores = torch.as_tensor(problem.reward)[prompt[:, None], shown]  # (n, K) true rewards r(x, y)
    order = sample_rankings(scores, generator=gen)  # (n, K) positions in `shown`, best first
    ranked = shown.gather(1, order)  # (n, K) response ids, best first
    return Rankings(prompt.numpy().astype(np.int64), ranked.numpy().astype(np.int64))


def one_pair_per_ranking(rankings: Rankings, generator: torch.Generator | None = None) -> Pairs:
    """Keep one (chosen, rejected) pair of each ranking, uniform over its K(K-1)/2 pairs (chapter 4).

    Uses :func:`dpo_teach.rankings.one_pair_from_ranking` on the positions 0..K-1; the better-ranked
    response of the pair is the chosen one.
    """
    resp = np.asarray(rankings.responses, dtype=np.int64)  # (N, K)
    positions = torch.arange(resp.shape[1]).expand(resp.shape[0], -1)  # (N, K) ranking = 0, 1, ..., K-1
    best, worst = one_pair_from_ranking(positions, generator)  # (N,), (N,) positions, best < worst
    rows = np.arange(len(resp))
    return Pairs(np.asarray(rankings.prompt, dtype=np.int64), resp[rows, best.numpy()], resp[rows, worst.numpy()])


def all_pairs_per_ranking(rankings: Rankings) -> Pairs:
    """Every (chosen, rejected) pair implied by each ranking: K(K-1)/2 pairs per ranking (chapter 4).

    Pairs of one ranking come out consecutively, in the order of
    :func:`dpo_teach.rankings.pairs_from_rankings`.
    """
    resp = np.asarray(rankings.responses, dtype=np.int64)  # (N, K)
    K = resp.shape[1]
    best, worst = pairs_from_rankings(torch.arange(K)[None])  # (1, P), (1, P) positions, best < worst
    return Pairs(np.repeat(np.asarray(rankings.prompt, dtype=np.int64), best.shape[1]),
                 resp[:, best[0].numpy()].ravel(), resp[:, worst[0].numpy()].ravel())


def has_finite_minimizer(data, n_prompts: int, n_responses: int) -> np.ndarray:
    r"""For each prompt, whether the loss on its data has a finite minimizer over a tabular policy.

    Draw an arrow from a to b whenever the data rank a above b (every pair implied by a ranking). The
    Bradley-Terry and Plackett-Luce likelihoods have a maximizer with finite rewards exactly when this graph,
    on the responses that appear with the prompt, is strongly connected (Ford 1957; Hunter 2004): otherwise
    some group of responses is never ranked below the rest, and the loss keeps falling as their implicit
    rewards grow without bound. Responses that never appear get no gradient and stay where they are.

    Returns:
        bool array. Shape: (n_prompts,)
    """
    prompt, items = _indices(data, n_prompts, n_responses)  # (N,), (N, K)
    prompt, items = prompt.numpy(), items.numpy()
    i, j = np.triu_indices(items.shape[1], k=1)  # position pairs, i ranked above j
    out = np.ones(n_prompts, dtype=bool)
    for x in range(n_prompts):
        rows = items[prompt == x]  # (n_x, K)
        if len(rows) == 0:
            continue
        seen = np.unique(rows)
        adj = np.zeros((n_responses, n_responses), dtype=bool)
        adj[rows[:, i].ravel(), rows[:, j].ravel()] = True  # a -> b: a ranked above b
        n_comp, _ = connected_components(adj[np.ix_(seen, seen)], directed=True, connection="strong")
        out[x] = n_comp == 1
    return out


# ------------------------------------------------------------ training ------------------------

@dataclass(frozen=True)
class TrainConfig:
    """Settings of :func:`train_tabular`; saved with the log (``log.config``)."""

    steps: int = 300                 # optimizer steps
    lr: float = 0.05                 # learning rate
    seed: int = 0                    # seeds the minibatch draws (unused with full batches)
    optimizer: str = "adam"          # "adam" (torch.optim.Adam) or "sgd" (plain gradient descent)
    batch_size: int | None = None    # None: every step uses all the data (deterministic)
    log_every: int = 1               # log every this many steps; step 0 and the last step are always logged

    def __post_init__(self):
        if isinstance(self.steps, bool) or not isinstance(self.steps, (int, np.integer)) or self.steps < 0:
            raise ValueError(f"steps must be an int >= 0, got {self.steps!r}")
        check_beta(self.lr, "lr")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        if self.batch_size is not None and (not isinstance(self.batch_size, (int, np.integer)) or self.batch_size < 1):
            raise ValueError(f"batch_size must be None or a positive int, got {self.batch_size!r}")
        if not isinstance(self.log_every, (int, np.integer)) or self.log_every < 1:
            raise ValueError(f"log_every must be a positive int, got {self.log_every!r}")


class TrainLog(list):
    """The training log: a list of dicts (one per logged step), with the settings in ``.config``."""

    def __init__(self, rows=(), config: TrainConfig | None = None, beta: float | None = None):
        super().__init__(rows)
        self.config, self.beta = config, beta

    def column(self, name: str) -> np.ndarray:
        """One metric over the logged steps, as a float64 array. Shape: (len(log),)"""
        return np.array([row[name] for row in self], dtype=np.float64)


def _indices(data, X, Y):
    """Validate ``data`` against an (X, Y) table and return it as torch index tensors."""
    if not isinstance(data, (Pairs, Rankings)):
        raise TypeError(f"data must be bandit.Pairs or tabular.Rankings, got {type(data).__name__}")
    prompt = torch.as_tensor(np.asarray(data.prompt, dtype=np.int64))
    if isinstance(data, Pairs):
        items = torch.stack([torch.as_tensor(np.asarray(data.chosen, dtype=np.int64)),
                             torch.as_tensor(np.asarray(data.rejected, dtype=np.int64))], dim=1)  # (N, 2)
    else:
        items = torch.as_tensor(np.asarray(data.responses, dtype=np.int64))  # (N, K)
    if prompt.dim() != 1 or items.dim() != 2 or items.shape[0] != prompt.shape[0] or len(prompt) == 0:
        raise ValueError(f"data: expected N >= 1 prompts and (N, K) responses, got {tuple(prompt.shape)} "
                         f"and {tuple(items.shape)}")
    if prompt.min() < 0 or prompt.max() >= X:
        raise ValueError(f"data: prompt ids must be in [0, {X}), got range [{prompt.min()}, {prompt.max()}]")
    if items.min() < 0 or items.max() >= Y:
        raise ValueError(f"data: response ids must be in [0, {Y}), got range [{items.min()}, {items.max()}]")
    return prompt, items


def _call_loss(loss_fn, pairwise, lp, ref_lp, beta):
    """Call ``loss_fn`` on gathered log-probs ``lp``, ``ref_lp`` (N, K); return losses and rewards (N, 2|K)."""
    if pairwise:
        losses, chosen_r, rejected_r = loss_fn(lp[:, 0], lp[:, 1], ref_lp[:, 0], ref_lp[:, 1], beta)
        return losses, torch.stack([chosen_r, rejected_r], dim=1)
    return loss_fn(lp, ref_lp, beta)


def _metrics(step, loss, rewards, lp):
    """The TRL-style metrics of one step, as plain floats."""
    chosen, rejected = rewards[:, 0].detach(), rewards[:, -1].detach()  # (N,) best and worst
    return {
        "step": step,
        "loss": loss.item(),
        "rewards/chosen": chosen.mean().item(),
        "rewards/rejected": rejected.mean().item(),
        "rewards/margins": (chosen - rejected).mean().item(),
        "rewards/accuracies": (chosen > rejected).double().mean().item(),
        "logps/chosen": lp[:, 0].detach().mean().item(),
        "logps/rejected": lp[:, -1].detach().mean().item(),
    }


def train_tabular(problem_or_ref, data, loss_fn: Callable, beta: float, steps: int = 300, lr: float = 0.05,
                  seed: int = 0, *, policy: TabularPolicy | None = None,
                  metrics_fn: Callable[[np.ndarray], dict] | None = None, weights=None, **config) -> TrainLog:
    r"""Train a tabular policy on preference data with ``loss_fn``; return the log (see the module docstring).

    Args:
        problem_or_ref: a :class:`dpo_teach.bandit.Problem`, or the reference table pi_ref. Shape: (X, Y)
        data: :class:`dpo_teach.bandit.Pairs` or :class:`Rankings` with ids into that table.
        loss_fn: e.g. ``losses.dpo_loss`` for pairs, ``losses.plackett_luce_loss`` for rankings; the
            mean of its per-example losses is minimized.
        beta: KL strength, passed to ``loss_fn``.
        steps, lr, seed: see :class:`TrainConfig`; other :class:`TrainConfig` fields go in ``config``.
        policy: the policy to train, **in place**; default: a fresh one equal to pi_ref (as DPO starts).
        metrics_fn: called with pi_theta (X, Y) at each logged step; its dict is merged into the row
            (e.g. the KL to pi* or the expected reward).
        weights: per-example weights of the loss, Shape: (N,); default 1/N each (the mean). Only with
            full batches. :func:`stack_runs` uses them to train independent runs in one table.

    Returns:
        :class:`TrainLog` (a list of dicts) with ``step``, ``loss``, ``rewards/*``, ``logps/*`` and the
        ``metrics_fn`` entries; ``log.config`` holds the settings.
    """
    cfg = TrainConfig(steps=steps, lr=lr, seed=seed, **config)
    beta = check_beta(beta)
    ref = check_policy("ref_probs", problem_or_ref.ref_probs if isinstance(problem_or_ref, Problem) else problem_or_ref)
    if np.any(ref <= 0):
        raise ValueError("ref_probs must be > 0 everywhere: the implicit reward uses log pi_ref")
    X, Y = ref.shape
    prompt, items = _indices(data, X, Y)  # (N,), (N, K)
    policy = TabularPolicy.from_probs(ref) if policy is None else policy
    if policy.shape != (X, Y):
        raise ValueError(f"policy has shape {policy.shape}, expected {(X, Y)} (the shape of pi_ref)")
    # log pi_ref computed exactly as the policy computes its own log-probs, so that a policy equal to pi_ref
    # gives implicit rewards of exactly 0 (not 1e-17), and rewards/accuracies starts at exactly 0
    ref_lp_all = torch.log_softmax(torch.as_tensor(np.log(ref)), dim=-1)[prompt[:, None], items]  # (N, K)
    pairwise = isinstance(data, Pairs)
    N = len(prompt)
    if weights is None:
        w = torch.full((N,), 1.0 / N, dtype=torch.float64)  # (N,) the mean
    else:
        w = torch.as_tensor(np.asarray(weights, dtype=np.float64))
        if w.shape != (N,) or not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
            raise ValueError(f"weights must be {N} finite numbers >= 0 (one per example), got shape {tuple(w.shape)}")
        if cfg.batch_size is not None:
            raise ValueError("weights only work with full batches (batch_size=None)")
    opt = (torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.SGD)(policy.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    log = TrainLog(config=cfg, beta=beta)
    for step in range(cfg.steps + 1):
        batch = slice(None) if cfg.batch_size is None else torch.randint(N, (cfg.batch_size,), generator=gen)
        lp = policy.log_probs()[prompt[batch, None], items[batch]]  # (B, K) log pi_theta
        losses, rewards = _call_loss(loss_fn, pairwise, lp, ref_lp_all[batch], beta)  # (B,), (B, K)
        loss = losses.mean() if cfg.batch_size is not None else (losses * w).sum()  # the objective
        if step % cfg.log_every == 0 or step == cfg.steps:
            row = _metrics(step, loss.detach(), rewards, lp)
            if metrics_fn is not None:
                row.update(metrics_fn(policy.probs()))
            log.append(row)
        if step == cfg.steps:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    return log


def config_dict(log: TrainLog) -> dict:
    """The settings of a run as a plain dict (for saving next to results)."""
    return {**asdict(log.config), "beta": log.beta}


# ------------------------------------------------------------ many runs at once ---------------

def stack_runs(ref_probs, datasets):
    r"""Put independent runs into one table, to train them together with one call of :func:`train_tabular`.

    Run b gets its own copy of the X prompts (rows b*X .. b*X + X - 1 of the stacked table). The rows of a
    tabular policy never interact, each example gets weight 1/N_b (N_b = the size of its run's data), so
    every run receives exactly its own mean-loss gradient; Adam and SGD update each coordinate from its
    own gradient only. Training the stack is therefore the same as training the runs one by one (up to
    rounding; the tests check it), only faster.

    Args:
        ref_probs: pi_ref. Shape: (X, Y)
        datasets: a list of B datasets, all :class:`dpo_teach.bandit.Pairs` or all :class:`Rankings`.

    Returns:
        ``(stacked_ref, stacked_data, weights)``: Shape: (B*X, Y); the data with prompt ids shifted by
        b*X; Shape: (N_1 + ... + N_B,). Use :func:`unstack` to split a (B*X, Y) table back.
    """
    ref = check_policy("ref_probs", ref_probs)
    X = ref.shape[0]
    if not datasets:
        raise ValueError("datasets is empty: expected a list of Pairs or Rankings")
    kinds = {type(d) for d in datasets}
    if len(kinds) != 1 or not kinds <= {Pairs, Rankings}:
        raise TypeError(f"datasets must all be Pairs or all Rankings, got {sorted(k.__name__ for k in kinds)}")
    prompts = [np.asarray(d.prompt, dtype=np.int64) + b * X for b, d in enumerate(datasets)]
    weights = np.concatenate([np.full(len(d), 1.0 / len(d)) for d in datasets])
    if kinds == {Pairs}:
        data = Pairs(np.concatenate(prompts), np.concatenate([d.chosen for d in datasets]).astype(np.int64),
                     np.concatenate([d.rejected for d in datasets]).astype(np.int64))
    else:
        data = Rankings(np.concatenate(prompts), np.concatenate([d.responses for d in datasets]).astype(np.int64))
    return np.tile(ref, (len(datasets), 1)), data, weights


def unstack(table, n_runs: int) -> np.ndarray:
    """Split a stacked (B*X, Y) table into runs. Shape: (B, X, Y)"""
    t = np.asarray(table)
    if t.ndim != 2 or t.shape[0] % n_runs:
        raise ValueError(f"table of shape {t.shape} cannot be split into {n_runs} runs of equal height")
    return t.reshape(n_runs, t.shape[0] // n_runs, t.shape[1])
