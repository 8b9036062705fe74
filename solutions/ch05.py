"""Solutions to the exercises of chapter 5, "The gradient, and what DPO really does".

SOLUTIONS maps each exercise name to the answer its checker in dpo_teach/exercises/ch05.py accepts.
"""
import math

import torch

# Exercise 1 (pair_weight). The implicit rewards are r_w = 0.1 (-12 - (-14)) = 0.2 and
# r_l = 0.1 (-15 - (-12)) = -0.3. The weight in the Section 4 gradient is sigma(r_l - r_w) = sigma(-0.5) = 0.3775:
# the pair is already ranked right, so it counts for less than the 1/2 it had at pi_theta = pi_ref.
PAIR_WEIGHT = 1 / (1 + math.exp(0.5))

# Exercise 2 (listwise_gradient_at_init). At u = 0 stage k picks uniformly among the K - k + 1 responses left, so
# dL/du_m = -1 + sum_{k <= m} 1 / (K - k + 1). For K = 3: -1 + 1/3 = -2/3, -1 + 1/3 + 1/2 = -1/6,
# -1 + 1/3 + 1/2 + 1 = 5/6. They sum to 0; descent raises the first two and lowers the last.
LISTWISE_GRADIENT_AT_INIT = [-2 / 3, -1 / 6, 5 / 6]


# Exercise 3 (dpo_logp_grads). Section 4 / chapter 5.2: dL/d log pi(y_w) = -beta sigma(r_l - r_w) and
# dL/d log pi(y_l) = +beta sigma(r_l - r_w), with r = beta (log pi_theta - log pi_ref), elementwise per pair.
def dpo_logp_grads(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta):
    r_w = beta * (policy_chosen_logps - ref_chosen_logps)  # (B,)
    r_l = beta * (policy_rejected_logps - ref_rejected_logps)  # (B,)
    weight = torch.sigmoid(r_l - r_w)  # (B,)
    return -beta * weight, beta * weight


SOLUTIONS = {
    "pair_weight": PAIR_WEIGHT,
    "listwise_gradient_at_init": LISTWISE_GRADIENT_AT_INIT,
    "dpo_logp_grads": dpo_logp_grads,
}
