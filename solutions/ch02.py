"""Solutions to the chapter 2 exercises (checked by tests/test_ch02_exercises.py)."""
import numpy as np
import sympy as sp

beta, Z = sp.symbols("beta Z", positive=True)


def optimal_policy(ref_probs, reward, beta):
    # Work with logits log pi_ref + r / beta and subtract each row's maximum before exp:
    # the largest term becomes exp(0) = 1, so nothing overflows however small beta is.
    logits = np.log(ref_probs) + np.asarray(reward) / beta  # (X, Y)
    logits = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


SOLUTIONS = {
    # dL/dpi_y = r_y - beta log(pi_y / pi_ref_y) - beta + lambda = 0
    #   => pi_y = pi_ref_y exp(r_y / beta) exp((lambda - beta) / beta);
    # summing to 1 gives exp((lambda - beta) / beta) = 1 / Z, so lambda = beta - beta log Z.
    "lagrange_multiplier": beta - beta * sp.log(Z),
    "optimal_policy": optimal_policy,
    # Z(0.5) = 0.9 + 0.1 e^4, Z(0.25) = 0.9 + 0.1 e^8 (= E[exp(r/beta)^2]);
    # sigma_1^2 = Z(0.25) / Z(0.5)^2 - 1 = 6.392..., and n = sigma_1^2 / 0.01^2 = 63,922.4, so 63,923 samples.
    "samples_needed": 63_923,
}
