"""How much does vectorizing a preference loss buy? Prints ratios measured in one run.

Compares the batched losses of dpo_teach.losses with the same formulas written as a Python loop
over examples (what a first implementation often looks like), on one thread, for a batch of 256.
Machines are noisy: read the ratio, not the absolute times.
"""
import math
import timeit

import torch

from dpo_teach.losses import dpo_loss, plackett_luce_loss

torch.set_num_threads(1)
torch.manual_seed(0)
B, K, BETA = 256, 4, 0.1
pc, pr, rc, rr = (torch.randn(B, dtype=torch.float64) for _ in range(4))
pl, rl = torch.randn(B, K, dtype=torch.float64), torch.randn(B, K, dtype=torch.float64)


def dpo_loop():
    out = []
    for i in range(B):
        h = (pc[i] - rc[i]) - (pr[i] - rr[i])
        out.append(math.log1p(math.exp(-BETA * float(h))))  # -log sigma(beta h)
    return out


def pl_loop():
    out = []
    for i in range(B):
        u = [BETA * float(pl[i, k] - rl[i, k]) for k in range(K)]
        out.append(-sum(u[k] - math.log(sum(math.exp(v) for v in u[k:])) for k in range(K)))
    return out


def best(fn, number):
    return min(timeit.repeat(fn, number=number, repeat=5)) / number


# the two implementations agree before we time them
assert torch.allclose(dpo_loss(pc, pr, rc, rr, BETA)[0], torch.tensor(dpo_loop(), dtype=torch.float64))
assert torch.allclose(plackett_luce_loss(pl, rl, BETA)[0], torch.tensor(pl_loop(), dtype=torch.float64))

for name, fast, slow in [("dpo_loss", lambda: dpo_loss(pc, pr, rc, rr, BETA), dpo_loop),
                         ("plackett_luce_loss", lambda: plackett_luce_loss(pl, rl, BETA), pl_loop)]:
    t_fast, t_slow = best(fast, 200), best(slow, 20)
    print(f"{name:>20}: batched {t_fast * 1e6:8.1f} us, python loop {t_slow * 1e6:9.1f} us "
          f"per batch of {B}: batched is {t_slow / t_fast:5.1f}x faster")
