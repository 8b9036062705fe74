"""Notebook set-up shared by every chapter: seeds, threads, print options, figure style.

Every chapter starts with ``setup()`` so that running it twice gives byte-identical outputs,
and writes its figures with ``save_figure`` (fixed size, no version metadata, atomic write).
"""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

FIGURE_SIZE = (6.4, 4.0)  # inches; every figure has a fixed size so its text/plain repr is stable
FIGURE_DPI = 100

_REPO = Path(__file__).resolve().parents[1]


def setup(seed: int = 0, threads: int = 1) -> None:
    """Seed Python, NumPy and torch; fix the thread count; set print options and figure style."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"setup: seed must be a non-negative int, got {seed!r}")
    import matplotlib
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)  # float32 sums depend on the thread count
    np.set_printoptions(precision=4, suppress=True, legacy=False)
    torch.set_printoptions(precision=4, sci_mode=False)
    matplotlib.rcParams.update({
        "figure.figsize": FIGURE_SIZE,
        "figure.dpi": FIGURE_DPI,
        "savefig.dpi": FIGURE_DPI,
        "font.size": 10,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "svg.hashsalt": "dpo-teach",
    })


def figures_dir() -> Path:
    """Where figures go: $DPO_TEACH_FIGURES (set by the course runner) or the repo's figures/."""
    return Path(os.environ.get("DPO_TEACH_FIGURES", _REPO / "figures"))


def save_figure(fig, name: str) -> None:
    """Write ``fig`` as PNG ``name`` into :func:`figures_dir`, atomically and reproducibly.

    Returns None, so that a notebook cell ending with it shows no (run-dependent) path.
    """
    if not name.endswith(".png") or "/" in name:
        raise ValueError(f"save_figure: name must be a plain file name ending in .png, got {name!r}")
    fig.tight_layout()  # fixed figure size, so only the margins move: labels are never cut off
    out = figures_dir()
    out.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=out)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes files private; a figure is meant to be read
    try:
        fig.savefig(tmp, format="png", metadata={"Software": None})
        os.replace(tmp, out / name)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def progress(iterable, **kwargs):
    """A progress bar (tqdm.auto) for long loops; silent when $DPO_TEACH_NO_PROGRESS is set.

    The course runner and the tests set it: a bar's timings would change every stored output.
    """
    if os.environ.get("DPO_TEACH_NO_PROGRESS"):
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)
