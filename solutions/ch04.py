"""Solutions to the exercises of chapter 4, "Rankings: the Plackett-Luce model and listwise DPO".

SOLUTIONS maps each exercise name to the answer its checker in dpo_teach/exercises/ch04.py accepts.
"""
import math

import sympy as sp
import torch

from dpo_teach.exercises import ch04

# Exercise 1 (ranking_probability). Eq. 18 builds the ranking c > a > b best first: first c is picked among
# {a, b, c}, with probability e^0 / (e^2 + e^1 + e^0) = 0.0900; then a among {a, b}, with probability
# e^2 / (e^2 + e^1) = 0.7311; b is what is left (factor 1). Product: 0.0658.
RANKING_PROBABILITY = math.exp(0) / (math.exp(2) + math.exp(1) + math.exp(0)) * math.exp(2) / (math.exp(2) + math.exp(1))

# Exercise 2 (pairwise_marginal). The rankings with 1 above 2 are 1>2>3, 1>3>2 and 3>1>2; their Eq. 18
# probabilities add up to exp(s1) / (exp(s1) + exp(s2)) = sigma(s1 - s2), with no trace of s3. The Gumbel
# picture says why: 1 is above 2 exactly when s1 + g1 > s2 + g2, whatever response 3 does.
_s = ch04.marginal_symbols()
PAIRWISE_MARGINAL = sp.exp(_s.s1) / (sp.exp(_s.s1) + sp.exp(_s.s2))


# Exercise 3 (listwise_loss). Eq. 20 with u = beta (log pi_theta - log pi_ref), columns best first:
# L = -sum_k [u_k - log sum_{j >= k} exp(u_j)]. A cumulative logsumexp taken from the right gives all the
# "log sum over the responses not yet placed" terms at once.
def listwise_loss(policy_logps, ref_logps, beta):
    u = beta * (policy_logps - ref_logps)  # (B, K)
    tail = torch.logcumsumexp(u.flip(-1), dim=-1).flip(-1)  # (B, K) log sum_{j >= k} exp(u_j)
    return -(u - tail).sum(dim=-1)  # (B,)


SOLUTIONS = {
    "ranking_probability": RANKING_PROBABILITY,
    "pairwise_marginal": PAIRWISE_MARGINAL,
    "listwise_loss": listwise_loss,
}
