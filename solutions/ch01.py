"""Solutions to the chapter 1 exercises (checked by tests/test_exercises_ch01.py)."""
import numpy as np
import sympy as sp

r1, r2 = sp.symbols("r1 r2", real=True)

SOLUTIONS = {
    # sigma(2.0 - 0.5) = 1 / (1 + e^{-1.5})
    "bt_probability": 1.0 / (1.0 + np.exp(-1.5)),
    # -log sigma(u) = log(1 + e^{-u}); logaddexp keeps it finite for large |u|
    "reward_nll": lambda rw, rl: np.mean(np.logaddexp(0.0, -(np.asarray(rw) - np.asarray(rl)))),
    # e^{f} cancels between numerator and denominator
    "shift_invariance": 1 / (1 + sp.exp(r2 - r1)),
}
