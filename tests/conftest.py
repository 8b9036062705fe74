"""Shared test set-up: every kernel nbval starts gets the same fixed environment as the runner."""
import os

from dpo_teach.runner import KERNEL_ENV

os.environ.update(KERNEL_ENV)
