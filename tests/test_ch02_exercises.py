"""Chapter 2's exercise checkers accept the shipped solutions and reject wrong answers."""

import numpy as np
import sympy as sp

from dpo_teach.exercises import ch02, load_solutions


def _solutions():
    return load_solutions("ch02")


def test_missing_answers_are_not_errors():
    for check in (ch02.check_lagrange_multiplier, ch02.check_optimal_policy, ch02.check_samples_needed):
        fb = check(None)
        assert not fb and "not answered yet" in repr(fb)


def test_lagrange_multiplier():
    assert ch02.check_lagrange_multiplier(_solutions()["lagrange_multiplier"])
    beta, Z = sp.symbols("beta Z")  # the reader's symbols, without assumptions: matched by name
    assert ch02.check_lagrange_multiplier(beta * (1 - sp.log(Z)))
    assert ch02.check_lagrange_multiplier("beta - beta*log(Z)")
    missed_one = ch02.check_lagrange_multiplier(-beta * sp.log(Z))
    assert not missed_one and "+1" in missed_one.message
    assert not ch02.check_lagrange_multiplier(beta * sp.log(Z))
    assert not ch02.check_lagrange_multiplier(beta - beta * sp.log(Z) + sp.Symbol("r"))
    assert not ch02.check_lagrange_multiplier([1, 2])


def test_optimal_policy():
    assert ch02.check_optimal_policy(_solutions()["optimal_policy"])

    def naive(ref, reward, beta):  # right formula, overflows for tiny beta
        p = ref * np.exp(reward / beta)
        return p / p.sum(axis=1, keepdims=True)

    fb = ch02.check_optimal_policy(naive)
    assert not fb and "overflow" in fb.message
    assert not ch02.check_optimal_policy(lambda ref, reward, beta: ref)  # pi_ref is not pi*
    assert not ch02.check_optimal_policy(lambda ref, reward, beta: ref[:, :2])
    raises = ch02.check_optimal_policy(lambda ref, reward, beta: 1 / 0)
    assert not raises and "ZeroDivisionError" in raises.message
    assert not ch02.check_optimal_policy(3.0)


def test_samples_needed():
    n = _solutions()["samples_needed"]
    assert ch02.check_samples_needed(n)
    assert abs(n - ch02.samples_needed_exact()) < 1
    assert not ch02.check_samples_needed(n * 2)
    root = ch02.check_samples_needed(np.sqrt(n))
    assert not root and "square" in root.message
    assert not ch02.check_samples_needed("many")
