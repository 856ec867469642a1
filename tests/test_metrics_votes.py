"""FactorVAE and BetaVAE cores on pre-grouped arrays, against loop references."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from metrics._common import DegenerateInputWarning
from metrics.beta_vae import beta_vae_from_pairs
from metrics.factor_vae import factor_vae_details, factor_vae_from_votes

SIZES = (5, 4, 6)


def _codes(factors: np.ndarray, rng: np.random.Generator, mix: float) -> np.ndarray:
    """5 dims: a tiny-variance dim 0 (pruned at 0.05), factors 0..2 on dims 1..3 (with some
    mixing), and a noise dim 4."""
    n = factors.shape[0]
    base = factors / np.array(SIZES)
    codes = np.empty((n, 5))
    codes[:, 0] = 0.001 * rng.normal(size=n)
    codes[:, 1] = base[:, 0] + mix * base[:, 1]
    codes[:, 2] = base[:, 1] + 0.05 * rng.normal(size=n)
    codes[:, 3] = base[:, 2] - mix * base[:, 0]
    codes[:, 4] = 0.3 * rng.normal(size=n)
    return codes


def _votes(rng: np.random.Generator, n_votes: int, batch: int, mix: float = 0.1):
    ks = rng.integers(0, len(SIZES), size=n_votes)
    factors = np.stack([rng.integers(0, s, size=(n_votes, batch)) for s in SIZES], axis=-1)
    factors[np.arange(n_votes), :, ks] = factors[np.arange(n_votes), 0, ks][:, None]
    codes = _codes(factors.reshape(-1, len(SIZES)), rng, mix).reshape(n_votes, batch, 5)
    return codes, ks


def _variance_codes(rng: np.random.Generator, n: int = 2000, mix: float = 0.1) -> np.ndarray:
    factors = np.stack([rng.integers(0, s, size=n) for s in SIZES], axis=1)
    return _codes(factors, rng, mix)


def ref_factor_vae(train, ks_tr, evals, ks_ev, var_codes, threshold):
    """The reference procedure, loop by loop, including its shifted (compressed) indexing."""
    variance = np.var(var_codes, axis=0, ddof=1)
    active = np.sqrt(variance) >= threshold
    k, d = len(SIZES), var_codes.shape[1]

    def votes(groups, ks):
        out = np.zeros((k, d), dtype=np.int64)
        for group, factor in zip(groups, ks, strict=True):
            local = np.var(group, axis=0, ddof=1)
            out[factor, np.argmin(local[active] / variance[active])] += 1
        return out

    tr, ev = votes(train, ks_tr), votes(evals, ks_ev)
    classifier = np.argmax(tr, axis=0)
    cols = np.arange(d)
    return np.sum(tr[classifier, cols]) / np.sum(tr), np.sum(ev[classifier, cols]) / np.sum(ev)


@pytest.mark.parametrize("threshold", [0.0, 0.05, 0.2])
def test_factor_vae_accuracies_equal_reference_with_and_without_pruning(threshold):
    rng = np.random.default_rng(int(threshold * 100))
    train, ks_tr = _votes(rng, 300, 16)
    evals, ks_ev = _votes(rng, 200, 16)
    var_codes = _variance_codes(rng)
    rotation = np.linalg.qr(np.random.default_rng(9).normal(size=(3, 3)))[0]
    for codes in (train, evals, var_codes):  # entangle factors across dims 1..3
        codes[..., 1:4] = codes[..., 1:4] @ rotation
    ref_tr, ref_ev = ref_factor_vae(train, ks_tr, evals, ks_ev, var_codes, threshold)
    for legacy in (False, True):
        ours = factor_vae_from_votes(
            train,
            ks_tr,
            evals,
            ks_ev,
            var_codes,
            3,
            prune_threshold=threshold,
            legacy_index=legacy,
        )
        assert ours["fvm_train_accuracy"] == pytest.approx(ref_tr, abs=1e-12)
        assert ours["fvm_eval_accuracy"] == pytest.approx(ref_ev, abs=1e-12)
    assert 0.3 < ref_ev < 1.0  # an entangled code: neither trivial nor perfect


def test_factor_vae_per_dim_readout_is_fixed():
    rng = np.random.default_rng(1)
    train, ks_tr = _votes(rng, 300, 32)
    evals, ks_ev = _votes(rng, 150, 32)
    var_codes = _variance_codes(rng)
    fixed = factor_vae_details(train, ks_tr, evals, ks_ev, var_codes, 3, prune_threshold=0.05)
    legacy = factor_vae_details(
        train, ks_tr, evals, ks_ev, var_codes, 3, prune_threshold=0.05, legacy_index=True
    )
    assert fixed["fvm_num_active_dims"] == 4.0  # dim 0 is pruned
    assert fixed["active"].tolist() == [False, True, True, True, True]
    # factor j lives on dim j + 1: every vote lands there, none on the pruned dim 0
    assert fixed["train_votes"][:, 0].sum() == 0
    assert fixed["assignment"][1:4].tolist() == [0, 1, 2]
    assert np.array_equal(np.argmax(fixed["train_votes"], axis=1), [1, 2, 3])
    # the reference's compressed index credits the same votes one column to the left
    assert np.array_equal(legacy["train_votes"][:, :4], fixed["train_votes"][:, 1:])
    assert fixed["fvm_eval_accuracy"] == legacy["fvm_eval_accuracy"] > 0.95


def test_factor_vae_without_active_dims_scores_zero_with_warning():
    rng = np.random.default_rng(2)
    train, ks_tr = _votes(rng, 20, 8)
    var_codes = _variance_codes(rng)
    with pytest.warns(DegenerateInputWarning, match="no active code dim"):
        out = factor_vae_from_votes(train, ks_tr, train, ks_tr, var_codes, 3, prune_threshold=10)
    assert out == {"fvm_train_accuracy": 0.0, "fvm_eval_accuracy": 0.0, "fvm_num_active_dims": 0.0}


def test_factor_vae_constant_dim_is_inactive_even_without_threshold():
    rng = np.random.default_rng(3)
    train, ks_tr = _votes(rng, 100, 16)
    var_codes = _variance_codes(rng)
    train[:, :, 4] = 7.0
    var_codes[:, 4] = 7.0
    with pytest.warns(DegenerateInputWarning, match=r"code dims \[4\] are constant"):
        out = factor_vae_from_votes(train, ks_tr, train, ks_tr, var_codes, 3, prune_threshold=0.0)
    assert out["fvm_num_active_dims"] == 4.0 and np.isfinite(out["fvm_train_accuracy"])


def test_factor_vae_input_checks():
    rng = np.random.default_rng(4)
    train, ks_tr = _votes(rng, 10, 8)
    var_codes = _variance_codes(rng, 50)
    bad = train.copy()
    bad[0, 0, 2] = np.nan
    with pytest.raises(ValueError, match=r"FactorVAE: train codes contain NaN or inf .* \[2\]"):
        factor_vae_from_votes(bad, ks_tr, train, ks_tr, var_codes, 3)
    with pytest.raises(ValueError, match=r"factor_index must lie in \[0, 2\)"):
        factor_vae_from_votes(train, ks_tr, train, ks_tr, var_codes, 2)


def test_beta_vae_matches_reference_and_separates_codes():
    rng = np.random.default_rng(5)

    def pairs(n, mix):
        ks = rng.integers(0, 3, size=n)
        f1 = np.stack([rng.integers(0, s, size=(n, 32)) for s in SIZES], axis=-1)
        f2 = np.stack([rng.integers(0, s, size=(n, 32)) for s in SIZES], axis=-1)
        f2[np.arange(n), :, ks] = f1[np.arange(n), :, ks]
        z1 = _codes(f1.reshape(-1, 3), rng, mix).reshape(n, 32, 5)
        z2 = _codes(f2.reshape(-1, 3), rng, mix).reshape(n, 32, 5)
        return z1, z2, ks

    tr, ev = pairs(200, 0.0), pairs(100, 0.0)
    ours = beta_vae_from_pairs(*tr, *ev, random_state=np.random.default_rng(0))
    feats_tr = np.array([np.mean(np.abs(a - b), axis=0) for a, b in zip(tr[0], tr[1], strict=True)])
    feats_ev = np.array([np.mean(np.abs(a - b), axis=0) for a, b in zip(ev[0], ev[1], strict=True)])
    clf = LogisticRegression().fit(feats_tr, tr[2])
    assert ours["betavae_train_accuracy"] == pytest.approx(clf.score(feats_tr, tr[2]), abs=1e-6)
    assert ours["betavae_eval_accuracy"] == pytest.approx(clf.score(feats_ev, ev[2]), abs=1e-6)
    assert ours["betavae_eval_accuracy"] > 0.95
    # a code made of noise only carries no information about the fixed factor
    noise = [
        rng.normal(size=tr[0].shape),
        rng.normal(size=tr[0].shape),
        tr[2],
        rng.normal(size=ev[0].shape),
        rng.normal(size=ev[0].shape),
        ev[2],
    ]
    chance = beta_vae_from_pairs(*noise, random_state=0)["betavae_eval_accuracy"]
    assert chance < 0.55
    with pytest.raises(ValueError, match="single factor"):
        beta_vae_from_pairs(tr[0], tr[1], np.zeros(200, int), *ev, random_state=0)


# --- smallest valid inputs, exact read-outs and the messages of the checks --------------------


# Two codes, every dim with ddof-1 variance 0.5: the global variance of the hand-made votes.
PAIR_VARIANCE_CODES = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])


def _hand_votes() -> tuple[np.ndarray, np.ndarray]:
    """Six groups of two codes (D = 3): the group's fixed factor j moves dim j by 0.01, every
    other dim by 1. Fixed factors 0, 1, 2, 0, 1, 2."""
    ks = np.array([0, 1, 2, 0, 1, 2])
    codes = np.zeros((6, 2, 3))
    codes[:, 1, :] = 1.0
    codes[np.arange(6), 1, ks] = 0.01
    return codes, ks


def test_factor_vae_pairs_vote_exactly_and_single_groups_count():
    """Batch 2 (the smallest group) votes on the one quiet dim; the read-out is exact."""
    codes, ks = _hand_votes()
    out = factor_vae_details(codes, ks, codes[:1], ks[:1], PAIR_VARIANCE_CODES, 3,
                             prune_threshold=0.0)
    assert out["train_votes"].tolist() == [[2, 0, 0], [0, 2, 0], [0, 0, 2]]
    assert out["train_votes"].dtype == np.int64
    assert out["eval_votes"].tolist() == [[1, 0, 0], [0, 0, 0], [0, 0, 0]]
    assert out["assignment"].tolist() == [0, 1, 2]
    assert out["fvm_train_accuracy"] == 1.0 and out["fvm_eval_accuracy"] == 1.0
    assert out["fvm_num_active_dims"] == 3.0
    # one factor: the votes spread over the three dims, every dim is assigned to it
    one = factor_vae_details(codes, np.zeros(6, int), codes, np.zeros(6, int),
                             PAIR_VARIANCE_CODES, 1, prune_threshold=0.0)
    assert one["train_votes"].tolist() == [[2, 2, 2]]
    assert one["fvm_train_accuracy"] == 1.0 and one["fvm_eval_accuracy"] == 1.0


def test_factor_vae_global_variance_and_threshold_boundary():
    """ddof-1 variance of the variance sample; a dim whose std equals the threshold is active."""
    from metrics.factor_vae import active_dims

    variance, active = active_dims(np.array([[0.0, 0.0], [1.0, 2.0]]), float(np.sqrt(0.5)))
    assert variance.tolist() == [0.5, 2.0]
    assert active.tolist() == [True, True]
    _, active = active_dims(np.array([[0.0, 0.0], [1.0, 2.0]]), 1.0)
    assert active.tolist() == [False, True]
    with pytest.raises(ValueError, match="^FactorVAE: the variance sample needs at least 2 codes$"):
        active_dims(np.ones((1, 2)), 0.0)
    bad = np.zeros((3, 2))
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match=r"^FactorVAE: variance codes contain NaN or inf in code "
                                         r"dims \[1\]"):
        active_dims(bad, 0.0)


def test_factor_vae_defaults_threshold_and_full_index():
    """Default threshold 0.05 (PAIR_VARIANCE_CODES: std 0.71, active by default) and votes
    indexed into the full code vector by default."""
    from metrics.factor_vae import vote_dims

    codes, ks = _hand_votes()
    explicit = factor_vae_details(codes, ks, codes, ks, PAIR_VARIANCE_CODES, 3,
                                  prune_threshold=0.05)
    default = factor_vae_details(codes, ks, codes, ks, PAIR_VARIANCE_CODES, 3)
    assert default["fvm_num_active_dims"] == explicit["fvm_num_active_dims"] == 3.0
    assert factor_vae_from_votes(codes, ks, codes, ks, PAIR_VARIANCE_CODES, 3) == {
        "fvm_train_accuracy": 1.0, "fvm_eval_accuracy": 1.0, "fvm_num_active_dims": 3.0}
    variance = np.array([0.5, 0.5, 0.5])
    active = np.array([False, True, True])
    assert vote_dims(codes, variance, active).tolist() == [1, 1, 2, 1, 1, 2]
    assert vote_dims(codes, variance, active, legacy_index=True).tolist() == [0, 0, 1, 0, 0, 1]


def test_factor_vae_without_active_dims_keeps_the_readout_layout():
    """No active dim: the same keys, shapes and integer dtypes as a scored read-out, all zero."""
    codes, ks = _hand_votes()
    scored = factor_vae_details(codes, ks, codes, ks, PAIR_VARIANCE_CODES, 3, prune_threshold=0.0)
    with pytest.warns(DegenerateInputWarning,
                      match=r"^FactorVAE: no active code dim \(std >= 10\); accuracies are 0$"):
        empty = factor_vae_details(codes, ks, codes, ks, PAIR_VARIANCE_CODES, 3, prune_threshold=10)
    assert set(empty) == set(scored)
    for key in ("train_votes", "eval_votes", "assignment"):
        assert empty[key].shape == scored[key].shape and empty[key].dtype == np.int64
        assert not empty[key].any()
    assert empty["active"].tolist() == [False, False, False]


def test_factor_vae_checks_name_the_split_and_the_problem():
    codes, ks = _hand_votes()
    var = PAIR_VARIANCE_CODES
    shape_msg = r"FactorVAE: eval codes must be \(n_votes, batch >= 2, D\), got "
    for bad in (codes[0], codes[:, :1], codes[:0], codes[..., None]):
        with pytest.raises(ValueError, match=shape_msg + re.escape(str(bad.shape))):
            factor_vae_from_votes(codes, ks, bad, ks[: len(bad)], var, 3)
    int_msg = r"FactorVAE: train factor_index must be integers of shape \(6,\)"
    for bad_ks in (ks.astype(float), ks[:5], ks[None]):
        with pytest.raises(ValueError, match=int_msg):
            factor_vae_from_votes(codes, bad_ks, codes, ks, var, 3)
    with pytest.raises(ValueError, match=r"FactorVAE: eval factor_index must lie in \[0, 3\)"):
        factor_vae_from_votes(codes, ks, codes, ks - 1, var, 3)
    with pytest.raises(ValueError, match=r"FactorVAE: train factor_index must lie in \[0, 3\)"):
        factor_vae_from_votes(codes, ks + 1, codes, ks, var, 3)
    with pytest.raises(ValueError, match="FactorVAE: num_factors must be >= 1, got 0"):
        factor_vae_from_votes(codes, ks, codes, ks, var, 0)
    wide = np.concatenate([codes, codes[..., :1]], axis=2)
    for train, evals, d_tr, d_ev in ((wide, codes, 4, 3), (codes, wide, 3, 4)):
        with pytest.raises(ValueError, match=f"variance 3, train {d_tr}, eval {d_ev}"):
            factor_vae_from_votes(train, ks, evals, ks, var, 3)


def test_beta_vae_classifier_is_pinned_and_its_inputs_named(monkeypatch, logistic_regression_spy):
    """The classifier gets LOGISTIC_PARAMS and the first seed of ``estimator_seeds``; only its
    ConvergenceWarning is silenced; every check names BetaVAE and the array."""
    from sklearn.exceptions import ConvergenceWarning

    import metrics.beta_vae as module
    from metrics._common import estimator_seeds

    Spy, made = logistic_regression_spy
    monkeypatch.setattr("sklearn.linear_model.LogisticRegression", Spy)  # imported when fitting
    x = np.array([[0.0, 1.0], [1.0, 0.0], [0.1, 0.9], [0.9, 0.1]])
    y = np.array([0, 1, 0, 1])
    with pytest.warns(UserWarning, match="something else") as record:
        out = module.beta_vae_from_features(x, y, x, y, random_state=7)
    assert not [w for w in record if issubclass(w.category, ConvergenceWarning)]
    assert made == [{"random_state": estimator_seeds(7, 1)[0], **module.LOGISTIC_PARAMS}]
    assert out == {"betavae_train_accuracy": 1.0, "betavae_eval_accuracy": 1.0}
    for split in ("train", "eval"):
        bad = x.copy()
        bad[2, 1] = np.nan
        args = (bad, y, x, y) if split == "train" else (x, y, bad, y)
        with pytest.raises(ValueError, match=rf"^BetaVAE: {split} features contain NaN or inf in "
                                             r"code dims \[1\]"):
            module.beta_vae_from_features(*args, random_state=0)
    with pytest.raises(ValueError, match="^BetaVAE: labels must be 1-D with one entry per feature "
                                         "row$"):
        module.beta_vae_from_features(x, y[:3], x, y, random_state=0)
    with pytest.raises(ValueError, match="^BetaVAE: the training labels hold a single factor; "
                                         "need at least 2$"):
        module.beta_vae_from_features(x, np.zeros(4, int), x, y, random_state=0)


def test_beta_vae_features_are_mean_absolute_differences_per_group():
    from metrics.beta_vae import beta_vae_features, beta_vae_from_features

    z1 = np.array([[[0.0, 1.0], [2.0, 2.0]]])
    z2 = np.array([[[1.0, 1.0], [-2.0, 2.5]]])
    assert beta_vae_features(z1, z2).tolist() == [[2.5, 0.25]]
    msg = r"BetaVAE: pair codes must be two equal \(n, batch, D\) arrays, got "
    for a, b in ((z1[0], z2[0]), (z1, z2[:, :1]), (z1[:0], z2[:0])):
        with pytest.raises(ValueError, match=msg + re.escape(f"{a.shape} and {b.shape}")):
            beta_vae_features(a, b)
    bad = z1.copy()
    bad[0, 1, 1] = np.inf
    with pytest.raises(ValueError, match=r"BetaVAE: z1 contain NaN or inf in code dims \[1\]"):
        beta_vae_features(bad, z2)
    with pytest.raises(ValueError, match=r"BetaVAE: z2 contain NaN or inf in code dims \[1\]"):
        beta_vae_features(z2, bad)
    x = np.eye(2)
    labels = np.array([0, 1])
    out = beta_vae_from_features(x, labels, x, labels, random_state=0)
    assert out == {"betavae_train_accuracy": 1.0, "betavae_eval_accuracy": 1.0}
    for y_tr, y_ev in ((labels[:1], labels), (labels, labels[None])):
        with pytest.raises(ValueError, match="BetaVAE: labels must be 1-D with one entry per"):
            beta_vae_from_features(x, y_tr, x, y_ev, random_state=0)
