"""The one place that chooses where tensors live (chapters 6 and 7 train on it)."""
from __future__ import annotations

import os


def pick_device(prefer: str | None = None):
    """Return ``torch.device``: ``prefer``, else $DPO_TEACH_DEVICE, else cuda when present, else cpu."""
    import torch

    name = prefer or os.environ.get("DPO_TEACH_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ValueError(f"pick_device: expected 'cpu', 'cuda' or 'cuda:N', got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"pick_device: {name!r} requested but no CUDA device is available; use 'cpu'")
    return torch.device(name)
