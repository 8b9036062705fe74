"""Solutions to the exercises of chapter 3, "Skipping the reward model: the DPO loss".

SOLUTIONS maps each exercise name to the answer its checker in dpo_teach/exercises/ch03.py accepts.
"""
import math

import sympy as sp

from dpo_teach.exercises import ch03

# Exercise 1 (loss_value). The log-ratios are log(pi/pi_ref) = -12 - (-14) = 2 for the chosen response
# and -15 - (-12) = -3 for the rejected one, so the margin is h = 2 - (-3) = 5 and beta h = 0.5.
# The loss (Eq. 7) is -log sigma(0.5) = log(1 + exp(-0.5)) = 0.4741.
LOSS_VALUE = math.log1p(math.exp(-0.5))


# Exercise 2 (implicit_reward). The implicit reward is beta log(pi_theta / pi_ref); with log-probabilities
# that is a difference, elementwise, for any shape.
def implicit_reward(policy_logps, ref_logps, beta):
    return beta * (policy_logps - ref_logps)


# Exercise 3 (normalizer). Eq. 5 says r = beta log(pi_r / pi_ref) + beta log Z(x), so the offset is
# g(x) = -beta log Z(x) (equivalently -beta log of the explicit sum): the projection of Eq. 8. It depends
# on the prompt only, so r + g is in the same class as r (Theorem 1).
_s = ch03.theorem1_symbols()
NORMALIZER = -_s.beta * sp.log(_s.Z)

SOLUTIONS = {
    "loss_value": LOSS_VALUE,
    "implicit_reward": implicit_reward,
    "normalizer": NORMALIZER,
}
