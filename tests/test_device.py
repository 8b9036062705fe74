"""The one place that picks the device: cuda when present, the CPU otherwise."""
import pytest
import torch

from dpo_teach.device import pick_device


def test_default_follows_cuda_availability(monkeypatch):
    monkeypatch.delenv("DPO_TEACH_DEVICE", raising=False)
    assert pick_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("DPO_TEACH_DEVICE", "cpu")
    assert pick_device().type == "cpu"


def test_bad_names_are_refused():
    with pytest.raises(ValueError, match="expected 'cpu', 'cuda' or 'cuda:N', got 'tpu'"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            pick_device("cuda")
