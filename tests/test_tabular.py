"""dpo_teach.tabular: the tabular softmax policy, its training loop, ranked data and stacked runs."""
import itertools
import math

import numpy as np
import pytest
import torch

from dpo_teach import bandit, tabular
from dpo_teach.losses import dpo_loss, plackett_luce_loss

METRICS = ["step", "loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies",
           "logps/chosen", "logps/rejected"]


@pytest.fixture(scope="module")
def problem():
    return bandit.make_problem(4, 6, seed=0, ref_temperature=2.0)


@pytest.fixture(scope="module")
def pairs(problem):
    return bandit.sample_preferences(problem.ref_probs, problem.reward, 400, seed=0)


# ---------------------------------------------------------------- the policy --------------------

def test_policy_from_probs_reproduces_the_table_and_normalizes(problem):
    policy = tabular.TabularPolicy.from_probs(problem.ref_probs)
    assert isinstance(policy.logits, torch.nn.Parameter) and policy.logits.dtype == torch.float64
    assert np.allclose(policy.probs(), problem.ref_probs, atol=1e-15)
    assert torch.allclose(policy.log_probs().exp().sum(-1), torch.ones(4, dtype=torch.float64), atol=1e-15)
    frozen = tabular.TabularPolicy(np.zeros((2, 3)), trainable=False)
    assert not isinstance(frozen.logits, torch.nn.Parameter) and list(frozen.parameters()) == []
    assert np.allclose(frozen.probs(), 1 / 3)


@pytest.mark.parametrize("bad, match", [
    (np.zeros(5), "shape"), (np.zeros((2, 1)), "Y >= 2"), (np.array([[0.0, np.nan]]), "non-finite"),
])
def test_policy_rejects_bad_logits(bad, match):
    with pytest.raises(ValueError, match=match):
        tabular.TabularPolicy(bad)


def test_from_probs_rejects_zero_probabilities():
    with pytest.raises(ValueError, match="> 0"):
        tabular.TabularPolicy.from_probs([[1.0, 0.0]])


# ---------------------------------------------------------------- training ----------------------

def test_training_changes_the_parameters_and_the_margin_rises(problem, pairs):
    policy = tabular.TabularPolicy.from_probs(problem.ref_probs)
    before = policy.logits.detach().clone()
    log = tabular.train_tabular(problem, pairs, dpo_loss, 0.5, steps=50, lr=0.05, policy=policy)
    assert not torch.allclose(policy.logits.detach(), before)
    assert [row["step"] for row in log] == list(range(51))
    assert set(METRICS) <= set(log[0])
    first, last = log[0], log[-1]
    # at pi_theta = pi_ref: exactly ln 2, zero rewards, zero accuracy (no rounding noise)
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-15)
    assert first["rewards/margins"] == 0.0 and first["rewards/accuracies"] == 0.0
    assert last["rewards/margins"] > 0.1 and last["loss"] < first["loss"] - 0.05
    assert last["rewards/accuracies"] > 0.5
    margins = log.column("rewards/margins")
    assert margins.shape == (51,) and margins[-1] > margins[10] > margins[0]
    assert log.config.steps == 50 and log.config.optimizer == "adam" and log.beta == 0.5
    assert tabular.config_dict(log)["lr"] == 0.05


def test_logged_rewards_are_the_implicit_rewards(problem, pairs):
    policy = tabular.TabularPolicy.from_probs(problem.ref_probs)
    log = tabular.train_tabular(problem, pairs, dpo_loss, 0.3, steps=5, lr=0.1, policy=policy, log_every=5)
    lp = np.log(policy.probs())
    ref = np.log(problem.ref_probs)
    chosen = 0.3 * (lp - ref)[pairs.prompt, pairs.chosen]
    rejected = 0.3 * (lp - ref)[pairs.prompt, pairs.rejected]
    last = log[-1]
    assert last["rewards/chosen"] == pytest.approx(chosen.mean(), abs=1e-12)
    assert last["rewards/rejected"] == pytest.approx(rejected.mean(), abs=1e-12)
    assert last["rewards/accuracies"] == pytest.approx((chosen > rejected).mean(), abs=1e-12)
    assert last["logps/chosen"] == pytest.approx(lp[pairs.prompt, pairs.chosen].mean(), abs=1e-12)
    assert [row["step"] for row in log] == [0, 5]


def test_zero_steps_logs_the_start_and_changes_nothing(problem, pairs):
    policy = tabular.TabularPolicy.from_probs(problem.ref_probs)
    log = tabular.train_tabular(problem.ref_probs, pairs, dpo_loss, 0.1, steps=0, policy=policy)
    assert len(log) == 1 and np.allclose(policy.probs(), problem.ref_probs, atol=1e-15)


def test_listwise_training_on_rankings(problem):
    ranked = tabular.sample_ranked_responses(problem, 300, 4, seed=1)
    log = tabular.train_tabular(problem, ranked, plackett_luce_loss, 0.5, steps=100, lr=0.05,
                                metrics_fn=lambda p: {"top": float(p.max())})
    assert log[0]["loss"] == pytest.approx(math.log(24), abs=1e-12)  # ln K! at pi_ref
    assert log[-1]["loss"] < log[0]["loss"] - 0.2
    assert log[-1]["rewards/margins"] > 0  # best-ranked above worst-ranked on average
    assert "top" in log[-1] and log[-1]["top"] > log[0]["top"]


def test_dpo_training_approaches_the_optimal_policy_with_much_data(problem):
    many = bandit.sample_preferences(problem.ref_probs, problem.reward, 20000, seed=3)
    p_star = bandit.optimal_policy(problem.ref_probs, problem.reward, 0.5)
    policy = tabular.TabularPolicy.from_probs(problem.ref_probs)
    tabular.train_tabular(problem, many, dpo_loss, 0.5, steps=300, lr=0.1, policy=policy, log_every=300)
    start = bandit.kl_divergence(p_star, problem.ref_probs).mean()
    assert bandit.kl_divergence(p_star, policy.probs()).mean() < 0.05 * start


def test_minibatches_are_reproducible_with_the_seed(problem, pairs):
    runs = [tabular.train_tabular(problem, pairs, dpo_loss, 0.5, steps=20, seed=s, batch_size=16, log_every=20)
            for s in (7, 7, 8)]
    assert runs[0][-1]["loss"] == runs[1][-1]["loss"] != runs[2][-1]["loss"]


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(beta=0.0), ValueError, "beta"),
    (dict(steps=-1), ValueError, "steps"),
    (dict(lr=-1.0), ValueError, "lr"),
    (dict(optimizer="rmsprop"), ValueError, "optimizer"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(log_every=0), ValueError, "log_every"),
    (dict(weights=np.ones(3)), ValueError, "weights"),
    (dict(policy=tabular.TabularPolicy(np.zeros((2, 6)))), ValueError, "policy has shape"),
])
def test_train_rejects_bad_settings(problem, pairs, kwargs, error, match):
    args = dict(beta=0.5)
    args.update(kwargs)
    beta = args.pop("beta")
    with pytest.raises(error, match=match):
        tabular.train_tabular(problem, pairs, dpo_loss, beta, **args)


def test_train_rejects_bad_data(problem):
    with pytest.raises(ValueError, match="response ids"):
        tabular.train_tabular(problem, bandit.Pairs(np.array([0]), np.array([9]), np.array([1])), dpo_loss, 0.1)
    with pytest.raises(ValueError, match="prompt ids"):
        tabular.train_tabular(problem, bandit.Pairs(np.array([4]), np.array([0]), np.array([1])), dpo_loss, 0.1)
    with pytest.raises(TypeError, match="Pairs or tabular.Rankings"):
        tabular.train_tabular(problem, [(0, 1, 2)], dpo_loss, 0.1)


# ---------------------------------------------------------------- ranked data -------------------

def test_sampled_rankings_hold_distinct_valid_responses_and_are_reproducible(problem):
    a = tabular.sample_ranked_responses(problem, 500, 4, seed=5)
    b = tabular.sample_ranked_responses(problem, 500, 4, seed=5)
    assert np.array_equal(a.responses, b.responses) and np.array_equal(a.prompt, b.prompt)
    assert a.responses.shape == (500, 4) and len(a) == 500
    assert all(len(set(row)) == 4 for row in a.responses.tolist())
    assert a.responses.min() >= 0 and a.responses.max() < 6 and set(a.prompt.tolist()) == {0, 1, 2, 3}


def test_rankings_of_all_responses_put_each_first_with_softmax_probability():
    # with K = Y every response is shown, so the top of the ranking is softmax(r(x, .)) (Eq. 18, first factor)
    prob = bandit.make_problem(1, 3, seed=2, reward_scale=1.5)
    ranked = tabular.sample_ranked_responses(prob, 40000, 3, seed=2)
    top = np.bincount(ranked.responses[:, 0], minlength=3) / 40000
    softmax = np.exp(prob.reward[0]) / np.exp(prob.reward[0]).sum()
    assert np.abs(top - softmax).max() < 4 * np.sqrt(0.25 / 40000)  # 4 standard errors at most


@pytest.mark.parametrize("n, K, match", [(0, 3, "positive int"), (5, 1, "2 <= K"), (5, 7, "2 <= K")])
def test_sample_ranked_responses_rejects_bad_arguments(problem, n, K, match):
    with pytest.raises(ValueError, match=match):
        tabular.sample_ranked_responses(problem, n, K)


def test_pairs_cut_from_rankings_keep_the_order_and_cover_all_position_pairs(problem):
    ranked = tabular.sample_ranked_responses(problem, 3000, 4, seed=6)
    one = tabular.one_pair_per_ranking(ranked, torch.Generator().manual_seed(6))
    position = {(i, int(y)): k for i, row in enumerate(ranked.responses) for k, y in enumerate(row)}
    pos_c = np.array([position[(i, int(c))] for i, c in enumerate(one.chosen)])
    pos_r = np.array([position[(i, int(r))] for i, r in enumerate(one.rejected)])
    assert np.all(pos_c < pos_r) and np.array_equal(one.prompt, ranked.prompt)
    counts = {pair: 0 for pair in itertools.combinations(range(4), 2)}
    for c, r in zip(pos_c, pos_r):
        counts[(c, r)] += 1
    assert min(counts.values()) > 3000 / 6 * 0.8  # roughly uniform over the 6 position pairs
    every = tabular.all_pairs_per_ranking(ranked)
    assert len(every) == 6 * 3000
    assert np.array_equal(every.chosen[:6], ranked.responses[0, [0, 0, 0, 1, 1, 2]])
    assert np.array_equal(every.rejected[:6], ranked.responses[0, [1, 2, 3, 2, 3, 3]])


def test_finite_minimizer_detection_against_training_behaviour():
    X, Y = 1, 3
    chain = bandit.Pairs(np.zeros(2, dtype=np.int64), np.array([0, 1]), np.array([1, 2]))  # 0 > 1 > 2 only
    cycle = bandit.Pairs(np.zeros(3, dtype=np.int64), np.array([0, 1, 2]), np.array([1, 2, 0]))  # 0>1>2>0
    assert not tabular.has_finite_minimizer(chain, X, Y)[0]
    assert tabular.has_finite_minimizer(cycle, X, Y)[0]
    ref = np.full((1, 3), 1 / 3)

    def spread(data, steps):
        policy = tabular.TabularPolicy.from_probs(ref)
        tabular.train_tabular(ref, data, dpo_loss, 1.0, steps=steps, lr=0.1, policy=policy, log_every=steps)
        z = policy.logits.detach().numpy()
        return z.max() - z.min()

    assert spread(cycle, 2000) < 1e-3  # a finite minimizer (here: all equal) is reached and kept
    assert spread(chain, 2000) > spread(chain, 500) + 1  # no minimizer: the logits keep moving apart
    # rankings: a single ranking never has a finite minimizer, two opposite ones do
    one = tabular.Rankings(np.array([0]), np.array([[0, 1, 2]]))
    two = tabular.Rankings(np.array([0, 0]), np.array([[0, 1, 2], [2, 1, 0]]))
    assert not tabular.has_finite_minimizer(one, X, Y)[0] and tabular.has_finite_minimizer(two, X, Y)[0]
    # a prompt without data, and responses that never appear, do not break it
    assert tabular.has_finite_minimizer(cycle, 2, 4).tolist() == [True, True]


# ---------------------------------------------------------------- stacked runs ------------------

@pytest.mark.parametrize("optimizer, lr", [("adam", 0.1), ("sgd", 20.0)])
def test_stacked_runs_equal_separate_runs(problem, optimizer, lr):
    datasets = [tabular.sample_ranked_responses(problem, n, 3, seed=n) for n in (30, 80, 200)]
    separate = []
    for d in datasets:
        policy = tabular.TabularPolicy.from_probs(problem.ref_probs)
        tabular.train_tabular(problem, d, plackett_luce_loss, 0.5, steps=60, lr=lr, optimizer=optimizer,
                              policy=policy, log_every=60)
        separate.append(policy.probs())
    ref, data, weights = tabular.stack_runs(problem.ref_probs, datasets)
    assert ref.shape == (12, 6) and len(data) == 310 and weights.sum() == pytest.approx(3.0)
    policy = tabular.TabularPolicy.from_probs(ref)
    tabular.train_tabular(ref, data, plackett_luce_loss, 0.5, steps=60, lr=lr, optimizer=optimizer, policy=policy,
                          weights=weights, log_every=60)
    stacked = tabular.unstack(policy.probs(), 3)
    assert stacked.shape == (3, 4, 6)
    assert np.abs(stacked - np.array(separate)).max() < 1e-9


def test_stack_runs_rejects_mixed_or_empty_datasets(problem, pairs):
    ranked = tabular.sample_ranked_responses(problem, 10, 3)
    with pytest.raises(TypeError, match="Pairs or all Rankings"):
        tabular.stack_runs(problem.ref_probs, [pairs, ranked])
    with pytest.raises(ValueError, match="empty"):
        tabular.stack_runs(problem.ref_probs, [])
    with pytest.raises(ValueError, match="cannot be split"):
        tabular.unstack(np.zeros((5, 2)), 2)
