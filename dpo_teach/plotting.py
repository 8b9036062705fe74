"""Figures shared by the chapters. Each function draws on an optional ``ax`` and returns the Axes;
none of them trains or computes anything expensive (they read results)."""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

_COLORS = {"data": "#dbe9f6", "model": "#fde2c8", "rl": "#f6d0d0", "dpo": "#d5efd5"}


def _box(ax, x, y, text, kind, w=0.17, h=0.2):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.01,rounding_size=0.02",
                                fc=_COLORS[kind], ec="#444444", lw=1))
    ax.text(x, y, text, ha="center", va="center", fontsize=8.5)


def _arrow(ax, x0, x1, y, w=0.17):
    ax.add_patch(FancyArrowPatch((x0 + w / 2, y), (x1 - w / 2, y), arrowstyle="-|>", mutation_scale=12,
                                 color="#444444", lw=1))


def draw_pipelines(ax=None):
    """Chapter 1: the three training stages, then RLHF-PPO (top) next to DPO (bottom)."""
    if ax is None:
        _, ax = plt.subplots()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    xs = [0.1, 0.3, 0.5, 0.7, 0.9]
    top, bottom, common = 0.72, 0.28, 0.5
    _box(ax, xs[0], common, "pretraining\n(next token)", "data")
    _box(ax, xs[1], common, "instruction\ntuning (SFT)\n" + r"$\pi_{\mathrm{ref}}$", "model")
    for x0, x1, y in [(xs[0], xs[1], common)]:
        _arrow(ax, x0, x1, y)
    # RLHF-PPO: preferences -> reward model -> PPO with a KL penalty -> policy
    _box(ax, xs[2], top, "preference\npairs " + r"$(x, y_w, y_l)$", "data")
    _box(ax, xs[3], top, "reward model\n" + r"$r_\phi$ (Eq. 2)", "rl")
    _box(ax, xs[4], top, "PPO: max " + r"$r_\phi$" + "\n" + r"$- \beta\,$KL (Eq. 3)", "rl")
    _arrow(ax, xs[2], xs[3], top)
    _arrow(ax, xs[3], xs[4], top)
    # DPO: preferences -> one classification-style loss -> policy
    _box(ax, xs[2], bottom, "preference\npairs " + r"$(x, y_w, y_l)$", "data")
    _box(ax, xs[3] + 0.1, bottom, "DPO loss (Eq. 7)\non " + r"$\pi_\theta$" + " directly,\nno reward model, no RL",
         "dpo", w=0.37)
    _arrow(ax, xs[2], xs[3] + 0.1 - 0.1, bottom)
    for y in (top, bottom):
        ax.add_patch(FancyArrowPatch((xs[1] + 0.085, common), (xs[2] - 0.085, y), arrowstyle="-|>",
                                     mutation_scale=12, color="#444444", lw=1, connectionstyle="arc3,rad=0"))
    ax.text(xs[3], 0.92, "RLHF-PPO: three models, sampling during training", ha="center", fontsize=9)
    ax.text(xs[3] + 0.1, 0.08, "DPO: supervised-style training on the preferences", ha="center", fontsize=9)
    ax.set_title("Stage 3, preference alignment: two ways")
    return ax


def plot_beta_sweep(betas, expected_rewards, kls, ax=None):
    """Chapter 1: expected reward and KL(pi* || pi_ref) of the optimal policy as beta varies."""
    if ax is None:
        _, ax = plt.subplots()
    ax.plot(betas, expected_rewards, color="C0", label=r"$E_{\pi^*}[r]$");
    ax.set_xscale("log")
    ax.set_xlabel(r"$\beta$ (KL strength)")
    ax.set_ylabel("expected reward", color="C0")
    twin = ax.twinx()
    twin.plot(betas, kls, color="C3", ls="--", label=r"KL$(\pi^* \| \pi_{\mathrm{ref}})$");
    twin.set_ylabel(r"KL$(\pi^* \| \pi_{\mathrm{ref}})$ (nats)", color="C3")
    twin.grid(False)
    twin.spines["right"].set_visible(True)
    lines = ax.get_lines() + twin.get_lines()
    ax.legend(lines, [ln.get_label() for ln in lines], loc="center right")
    ax.set_title("The KL-regularized optimum trades reward for closeness")
    return ax
