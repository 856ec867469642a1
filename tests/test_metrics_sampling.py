"""Known answers through the sampling layer on a factor grid whose images are the factor values."""

from __future__ import annotations

import re
from dataclasses import asdict

import numpy as np
import pytest

from datasets.base import GroundTruthData
from metrics._common import DegenerateInputWarning
from metrics.bank import MIN_BATCH, CodeMemo, encode, sample_codes
from metrics.beta_vae import BetaVAESettings, beta_vae_score
from metrics.dci import FAST_TOLERANCE, HIST_TOLERANCE, dci
from metrics.factor_vae import FVMSettings, factor_vae_score
from metrics.mig import mig
from metrics.registry import METRICS, ScoreKey, register_metric, score_keys
from metrics.sampling import metric_settings, representation_metrics

SIZES = (5, 4, 6)


class FactorImages(GroundTruthData):
    """Observations are the factor indices themselves: uint8 (n, 1, 1, K)."""

    name = "factor-images"

    def __init__(self, sizes: tuple[int, ...] = SIZES) -> None:
        self._sizes = tuple(sizes)

    @property
    def factor_names(self) -> tuple[str, ...]:
        return tuple(f"f{i}" for i in range(len(self._sizes)))

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return self._sizes

    @property
    def observation_shape(self) -> tuple[int, int, int]:
        return (1, 1, len(self._sizes))

    def observations(self, factors: np.ndarray) -> np.ndarray:
        factors = self.check_factors(factors)
        return factors.astype(np.uint8).reshape(-1, 1, 1, len(self._sizes))


def identity(images: np.ndarray) -> np.ndarray:
    return images.reshape(images.shape[0], -1).astype(np.float64)


# Householder reflection I - 2 v v^T with v = (1, 1, 1) / sqrt(3): every code dim mixes all three
# factors (loadings 1/3 and -2/3), an orthogonal and maximally entangled code.
ROTATION = np.eye(3) - 2.0 / 3.0 * np.ones((3, 3))


def rotated(images: np.ndarray) -> np.ndarray:
    z = identity(images) / (np.array(SIZES) - 1) - 0.5
    return z @ ROTATION


def duplicated(images: np.ndarray) -> np.ndarray:
    z = identity(images)
    return np.concatenate([z, z[:, :1]], axis=1)


def make_noise(seed: int):
    noise_rng = np.random.default_rng(seed)

    def noise(images: np.ndarray) -> np.ndarray:
        return noise_rng.normal(size=(images.shape[0], 3))

    return noise


def make_noisy(seed: int):
    """Lightly mixed, noisy factor codes plus two pure-noise dims (where a subsampled GBT would
    spread importance over the noise dims)."""
    noise_rng = np.random.default_rng(seed)
    mix = np.eye(3) + 0.15 * np.random.default_rng(seed + 1).normal(size=(3, 3))

    def noisy(images: np.ndarray) -> np.ndarray:
        z = identity(images) / (np.array(SIZES) - 1) @ mix
        z = z + 0.05 * noise_rng.normal(size=z.shape)
        return np.concatenate([z, noise_rng.normal(size=(len(z), 2))], axis=1)

    return noisy


DATA = FactorImages()


def _split(represent, seed: int, n_train: int = 600, n_test: int = 300):
    rng = np.random.default_rng(seed)
    tr = sample_codes(DATA, represent, n_train, rng)
    te = sample_codes(DATA, represent, n_test, rng)
    return tr[0], tr[1], te[0], te[1]


def test_sample_codes_is_chunk_independent_and_seeded():
    a = sample_codes(DATA, identity, 300, np.random.default_rng(0), chunk_size=7)
    b = sample_codes(DATA, identity, 300, np.random.default_rng(0), chunk_size=256)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert np.array_equal(a[0], a[1].astype(float))  # identity code equals the factors
    with pytest.raises(ValueError, match=r"represent must return \(n, D\) codes"):
        sample_codes(DATA, lambda x: x.reshape(-1), 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="represent: returned codes contain NaN"):
        sample_codes(DATA, lambda x: np.full((len(x), 2), np.inf), 10, np.random.default_rng(0))


def test_mig_known_answers():
    assert mig(*_split(identity, 0)[:2])["mig"] > 0.9
    assert mig(*_split(rotated, 0)[:2])["mig"] < 0.6
    assert mig(*_split(make_noise(1), 0, n_train=1500)[:2])["mig"] < 0.05
    assert mig(*_split(duplicated, 0)[:2])["mig"] < 0.7  # factor 0's gap collapses to 0


@pytest.mark.parametrize("mode", ["exact", "fast", "hist"])
def test_dci_known_answers(mode):
    ident = dci(*_split(identity, 1), mode=mode, random_state=0)
    assert ident["dci_disentanglement"] > 0.9
    assert ident["dci_completeness"] > 0.9
    assert ident["dci_informativeness_test"] > 0.99
    noise = dci(*_split(make_noise(2), 1), mode=mode, random_state=0)
    assert noise["dci_disentanglement"] < 0.1
    rot = dci(*_split(rotated, 1), mode=mode, random_state=0)
    assert rot["dci_disentanglement"] < ident["dci_disentanglement"] - 0.3
    dup = dci(*_split(duplicated, 1), mode=mode, random_state=0)
    assert dup["dci_completeness"] < ident["dci_completeness"] - 0.1


@pytest.mark.parametrize("mode,tolerance", [("fast", FAST_TOLERANCE), ("hist", HIST_TOLERANCE)])
@pytest.mark.parametrize("represent", [identity, rotated, make_noisy(5)])
def test_dci_approximations_are_calibrated_against_exact(represent, mode, tolerance):
    """``fast`` (fewer GBT stages) and ``hist`` (LightGBM) stay within their documented
    tolerance of ``exact``."""
    split = _split(represent, 3, n_train=900, n_test=400)
    exact = dci(*split, mode="exact", random_state=5)
    approx = dci(*split, mode=mode, random_state=5)
    for key, tol in tolerance.items():
        assert abs(approx[key] - exact[key]) <= tol, (key, approx[key], exact[key])


def test_factor_vae_known_answers():
    kw = {"batch_size": 32, "num_train": 150, "num_eval": 100, "num_variance_estimate": 500}
    ident = factor_vae_score(DATA, identity, np.random.default_rng(0), **kw)
    assert ident["fvm_eval_accuracy"] > 0.95 and ident["fvm_train_accuracy"] > 0.95
    assert ident["fvm_num_active_dims"] == 3.0
    rot = factor_vae_score(DATA, rotated, np.random.default_rng(0), **kw)
    assert rot["fvm_eval_accuracy"] < ident["fvm_eval_accuracy"] - 0.1
    noise = factor_vae_score(DATA, make_noise(3), np.random.default_rng(0), **kw)
    assert noise["fvm_eval_accuracy"] < 0.55  # chance is about 1/3
    # chunking changes nothing
    again = factor_vae_score(DATA, rotated, np.random.default_rng(0), chunk_size=50, **kw)
    assert again == rot


def test_beta_vae_known_answers():
    kw = {"batch_size": 16, "num_train": 150, "num_eval": 100}
    ident = beta_vae_score(DATA, identity, np.random.default_rng(0), **kw)
    assert ident["betavae_eval_accuracy"] > 0.95
    noise = beta_vae_score(DATA, make_noise(4), np.random.default_rng(0), **kw)
    assert noise["betavae_eval_accuracy"] < 0.6


def test_single_valued_factor_is_never_fixed_in_votes():
    data = FactorImages((5, 1, 6))
    kw = {"batch_size": 16, "num_train": 60, "num_eval": 40, "num_variance_estimate": 200}
    with pytest.warns(DegenerateInputWarning) as record:
        out = factor_vae_score(data, identity, np.random.default_rng(0), **kw)
    messages = " | ".join(str(w.message) for w in record)
    assert "FactorVAE: factors [1] have a single value and are never fixed" in messages
    assert "code dims [1] are constant" in messages
    # the constant dim 1 is inactive; the other two are perfect
    assert out["fvm_num_active_dims"] == 2.0 and out["fvm_eval_accuracy"] == 1.0


TINY = {
    "bank": {"num_train": 200, "num_test": 100},
    "dci": {"mode": "fast"},
    "fvm": {"batch_size": 16, "num_train": 60, "num_eval": 40, "num_variance_estimate": 200},
    "betavae": {"batch_size": 8, "num_train": 60, "num_eval": 40},
}


def test_representation_metrics_is_deterministic_and_complete():
    a = representation_metrics(DATA, rotated, np.random.default_rng(7), overrides=TINY)
    b = representation_metrics(DATA, rotated, np.random.default_rng(7), overrides=TINY)
    assert a == b
    expected = {
        "mig",
        "sap",
        "dci_disentanglement",
        "dci_completeness",
        "dci_informativeness_train",
        "dci_informativeness_test",
        "modularity",
        "explicitness_train",
        "explicitness_test",
        "fvm_train_accuracy",
        "fvm_eval_accuracy",
        "fvm_num_active_dims",
        "betavae_train_accuracy",
        "betavae_eval_accuracy",
    }
    assert set(a) == expected
    assert all(isinstance(v, float) and np.isfinite(v) for v in a.values())
    c = representation_metrics(DATA, rotated, np.random.default_rng(8), overrides=TINY)
    assert c != a


def test_a_metric_samples_by_its_name_not_its_position():
    """Resizing one metric leaves every other metric's numbers exactly as they were."""
    base = representation_metrics(DATA, rotated, np.random.default_rng(3), overrides=TINY)
    bigger = {**TINY, "betavae": {"batch_size": 8, "num_train": 90, "num_eval": 40}}
    other = representation_metrics(DATA, rotated, np.random.default_rng(3),
                                   overrides=bigger)
    changed = {k for k in base if base[k] != other[k]}
    assert changed and changed <= {"betavae_train_accuracy", "betavae_eval_accuracy"}


def test_a_metric_registered_in_one_place_is_scored_and_described():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class ToySettings:
        scale: float = 1.0

    @register_metric("toy-mean-code", description="mean |code| on the shared train set",
                     settings=ToySettings, profiles={"quick": {"scale": 2.0}},
                     keys=(ScoreKey("toy_mean_code", "mean |code| (toy)", high=10.0),))
    def toy(bank, settings, rng):
        return {"toy_mean_code": settings.scale * float(np.abs(bank.train[0]).mean())}

    try:
        scores = representation_metrics(DATA, identity, np.random.default_rng(0),
                                        overrides=TINY)
        assert scores["toy_mean_code"] > 0
        assert metric_settings("quick")["toy-mean-code"] == {"scale": 2.0}
        assert "toy_mean_code" in score_keys()
    finally:
        METRICS._entries.pop("toy-mean-code")


def test_a_metric_must_return_the_keys_it_declares():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class NoSettings:
        pass

    register_metric("toy-liar", description="declares one key, returns another",
                    settings=NoSettings, keys=(ScoreKey("toy_a", "a"),))(
        lambda bank, settings, rng: {"toy_b": 1.0})
    try:
        with pytest.raises(ValueError, match="'toy-liar' returned keys"):
            representation_metrics(DATA, identity, np.random.default_rng(0), overrides=TINY)
    finally:
        METRICS._entries.pop("toy-liar")


def test_metric_settings_profiles():
    paper = metric_settings("paper")
    assert paper["bank"] == {"num_train": 10000, "num_test": 5000}
    assert paper["dci"] == {"mode": "exact"}
    assert (paper["fvm"]["num_train"], paper["fvm"]["num_eval"],
            paper["fvm"]["num_variance_estimate"], paper["fvm"]["prune_threshold"]) == (
        10000, 5000, 10000, 0.05)
    quick = metric_settings("quick")
    assert quick["bank"] == {"num_train": 3000, "num_test": 1500}
    assert quick["dci"] == {"mode": "fast"} and quick["fvm"]["num_train"] == 500
    assert metric_settings("quick", {"dci": {"mode": "exact"}})["dci"]["mode"] == "exact"
    with pytest.raises(ValueError, match="unknown profile 'fastest'"):
        metric_settings("fastest")
    with pytest.raises(ValueError, match="dci mode"):
        metric_settings("quick", {"dci": {"mode": "lightgbm"}})
    with pytest.raises(ValueError, match="unknown config field"):
        metric_settings("quick", {"fvm": {"num_votes": 3}})
    with pytest.raises(ValueError, match="unknown metric"):
        metric_settings("quick", {"fmv": {"num_train": 3}})


def _invariant(represent):
    def wrapped(images: np.ndarray) -> np.ndarray:
        return represent(images)

    wrapped.batch_invariant = True
    return wrapped


def test_code_reuse_gives_the_same_scores_and_encodes_each_row_once():
    calls = []

    def counted(images: np.ndarray) -> np.ndarray:
        calls.append(len(images))
        return rotated(images)

    represent = _invariant(counted)
    plain = representation_metrics(DATA, rotated, np.random.default_rng(3), overrides=TINY)
    auto = representation_metrics(DATA, represent, np.random.default_rng(3), overrides=TINY)
    assert auto == plain
    # 120 distinct rows, each encoded once (plus the probe and batches padded to MIN_BATCH)
    reused = list(calls)
    assert min(reused) >= MIN_BATCH
    calls.clear()
    off = representation_metrics(DATA, represent, np.random.default_rng(3), overrides=TINY,
                                 reuse=False)
    assert off == plain
    assert sum(reused) < sum(calls) / 2


def test_code_memo_reuses_rows_exactly_and_pads_small_batches():
    memo = CodeMemo()
    batches = []

    def represent(images: np.ndarray) -> np.ndarray:
        batches.append(len(images))
        return identity(images) * 0.5

    factors = np.array([[1, 2, 3], [1, 2, 3], [0, 0, 0]])
    codes = encode(DATA, represent, factors, memo=memo)
    assert np.array_equal(codes, identity(DATA.observations(factors)) * 0.5)
    assert memo.encoded == 2 and len(memo) == 2 and min(batches) >= MIN_BATCH
    more = np.array([[0, 0, 0], [4, 3, 5], [1, 2, 3]])
    assert np.array_equal(encode(DATA, represent, more, memo=memo),
                          identity(DATA.observations(more)) * 0.5)
    assert memo.encoded == 3 and memo.requested == 6


def test_code_memo_turns_itself_off_for_a_batch_dependent_encoder():
    def batch_dependent(images: np.ndarray) -> np.ndarray:
        return identity(images) + len(images)

    memo = CodeMemo()
    factors = np.asarray(DATA.sample_factors(300, np.random.default_rng(0)))
    with pytest.warns(RuntimeWarning, match="batch_invariant"):
        codes = encode(DATA, batch_dependent, factors, memo=memo)
    assert not memo.enabled
    assert np.array_equal(codes, encode(DATA, batch_dependent, factors))


@pytest.mark.filterwarnings("ignore::metrics._common.DegenerateInputWarning")
def test_vote_metrics_take_their_smallest_sizes_and_reject_smaller():
    """The documented minimum sizes run; one less names what is needed."""
    tiny = factor_vae_score(DATA, identity, np.random.default_rng(0), batch_size=2, num_train=1,
                            num_eval=1, num_variance_estimate=2)
    # accepted is what is tested (one train vote is right by definition, so no value is)
    assert set(tiny) == {"fvm_train_accuracy", "fvm_eval_accuracy", "fvm_num_active_dims"}
    fvm_msg = ("FactorVAE: need batch_size >= 2, num_train/num_eval >= 1, "
               "num_variance_estimate >= 2")
    for bad in ({"batch_size": 1}, {"num_train": 0}, {"num_eval": 0},
                {"num_variance_estimate": 1}):
        kw = {"batch_size": 2, "num_train": 1, "num_eval": 1, "num_variance_estimate": 2, **bad}
        with pytest.raises(ValueError, match=f"^{re.escape(fvm_msg)}$"):
            factor_vae_score(DATA, identity, np.random.default_rng(0), **kw)
    # seed 1: the two training points share different factors (a classifier needs two classes)
    single = beta_vae_score(DATA, identity, np.random.default_rng(1), batch_size=1, num_train=2,
                            num_eval=1)
    assert set(single) == {"betavae_train_accuracy", "betavae_eval_accuracy"}
    beta_msg = "BetaVAE: need batch_size >= 1, num_train >= 2, num_eval >= 1"
    for bad in ({"batch_size": 0}, {"num_train": 1}, {"num_eval": 0}):
        kw = {"batch_size": 1, "num_train": 40, "num_eval": 1, **bad}
        with pytest.raises(ValueError, match=f"^{re.escape(beta_msg)}$"):
            beta_vae_score(DATA, identity, np.random.default_rng(0), **kw)
    with pytest.raises(ValueError, match="^BetaVAE: needs at least 2 factors with more than one "
                                         "value$"):
        beta_vae_score(FactorImages((5, 1, 1)), identity, np.random.default_rng(0))
    # exactly two varying factors are enough; the single-valued one is named
    with pytest.warns(DegenerateInputWarning, match=r"^BetaVAE: factors \[1\] have a single value "
                                                    r"and are never fixed$"):
        two = beta_vae_score(FactorImages((5, 1, 6)), identity, np.random.default_rng(0),
                             batch_size=4, num_train=40, num_eval=10)
    assert two["betavae_eval_accuracy"] > 0.9


def test_beta_vae_points_share_the_drawn_factor_exactly():
    """With the factor values as codes, the shared factor's feature is exactly 0 in every
    point and the others are not (a perfect code scores 1)."""
    from metrics.beta_vae import _beta_vae_points

    features, shared = _beta_vae_points(DATA, identity, np.random.default_rng(1), 50, 8,
                                        np.arange(3), chunk_size=20)
    assert features.shape == (50, 3) and set(shared.tolist()) == {0, 1, 2}
    assert np.all(features[np.arange(50), shared] == 0.0)
    others = np.ones_like(features, dtype=bool)
    others[np.arange(50), shared] = False
    assert np.all(features[others] > 0.0)
    again, _ = _beta_vae_points(DATA, identity, np.random.default_rng(1), 50, 8, np.arange(3),
                                chunk_size=1000)
    assert np.array_equal(again, features)
    perfect = beta_vae_score(DATA, identity, np.random.default_rng(0), batch_size=8,
                             num_train=150, num_eval=100)
    assert perfect == {"betavae_train_accuracy": 1.0, "betavae_eval_accuracy": 1.0}


def test_factor_vae_groups_hold_the_fixed_factor_exactly():
    """Every group's fixed factor takes one value in all its rows; the others vary."""
    from metrics.factor_vae import _fixed_factor_groups

    factors, fixed = _fixed_factor_groups(DATA, np.random.default_rng(2), 40, 16, np.array([0, 2]))
    assert factors.shape == (40, 16, 3) and set(fixed.tolist()) == {0, 2}
    rows = np.arange(40)
    assert np.all(factors[rows, :, fixed] == factors[rows, :1, fixed])
    assert np.all(np.ptp(factors[:, :, 1], axis=1) > 0)  # never fixed: not in `varying`


def _scaled_noisy(scale: float, noise: float, seed: int):
    """Identity codes times ``scale`` plus Gaussian noise from a fresh stream (same calls, same
    noise), so that accuracies move with every sample size."""
    rng = np.random.default_rng(seed)
    return lambda images: scale * identity(images) + noise * rng.normal(size=(len(images), 3))


@pytest.mark.parametrize("score, settings, scale, noise, fixed", [
    # std about 0.15: the 0.05 threshold matters, and all three dims stay active
    (factor_vae_score, FVMSettings, 0.1, 0.1, {"fvm_num_active_dims": 3.0}),
    (beta_vae_score, BetaVAESettings, 1.0, 3.0, {}),
])
def test_vote_metric_defaults_are_the_settings_defaults(score, settings, scale, noise, fixed):
    """The functions' defaults are the reference study's (the registered settings): same draws,
    same numbers, on codes whose accuracy moves with every size (and FactorVAE's threshold)."""
    default = score(DATA, _scaled_noisy(scale, noise, 1), np.random.default_rng(0),
                    chunk_size=8192)
    explicit = score(DATA, _scaled_noisy(scale, noise, 1), np.random.default_rng(0),
                     chunk_size=8192, **asdict(settings()))
    assert default == explicit
    accuracy = next(v for k, v in default.items() if k.endswith("eval_accuracy"))
    assert 0.5 < accuracy < 1.0
    assert {k: default[k] for k in fixed} == fixed


def test_factor_vae_score_without_active_dims_scores_zero():
    """A constant code: every dim has variance 0, no vote is cast."""
    with pytest.warns(DegenerateInputWarning) as record:
        out = factor_vae_score(DATA, lambda images: np.ones((len(images), 2)),
                               np.random.default_rng(0), batch_size=4, num_train=5, num_eval=3,
                               num_variance_estimate=10)
    assert out == {"fvm_train_accuracy": 0.0, "fvm_eval_accuracy": 0.0, "fvm_num_active_dims": 0.0}
    assert [str(w.message) for w in record] == [
        "FactorVAE: code dims [0, 1] are constant (always inactive)",
        "FactorVAE: no active code dim (std >= 0.05); accuracies are 0",
    ]


@pytest.mark.parametrize("score, kw, rows", [
    (factor_vae_score, {"batch_size": 16, "num_train": 6, "num_eval": 4,
                        "num_variance_estimate": 50}, 50 + 10 * 16),
    (beta_vae_score, {"batch_size": 16, "num_train": 6, "num_eval": 4}, 2 * 10 * 16),
])
def test_vote_metrics_encode_in_chunks_and_through_the_memo(score, kw, rows):
    """Every encode call (FactorVAE's variance sample included) holds at most ``chunk_size``
    rows (a group larger than a chunk is split); with a memo every row is requested through it."""
    calls: list[int] = []

    def counted(images: np.ndarray) -> np.ndarray:
        calls.append(len(images))
        return identity(images)

    plain = score(DATA, counted, np.random.default_rng(0), chunk_size=8, **kw)
    assert max(calls) == 8 and sum(calls) == rows
    memo = CodeMemo()
    reused = score(DATA, identity, np.random.default_rng(0), memo=memo, **kw)
    assert reused == plain
    assert memo.requested == rows


def test_fixed_factor_groups_take_the_first_rows_value():
    """The fixed factor's value is the one drawn for the group's first row."""
    from metrics.factor_vae import _fixed_factor_groups

    factors, fixed = _fixed_factor_groups(DATA, np.random.default_rng(5), 30, 4, np.arange(3))
    rng = np.random.default_rng(5)
    rng.integers(0, 3, size=30)  # the fixed factors
    drawn = DATA.sample_factors(30 * 4, rng).reshape(30, 4, 3)
    groups = np.arange(30)
    first = np.repeat(drawn[groups, 0, fixed][:, None], 4, axis=1)
    assert np.array_equal(factors[groups, :, fixed], first)
    assert factors.dtype == np.int64


def test_dci_from_importance_known_two_by_two_and_checks():
    """R = [[1, 0], [1, 1]]: code 0 is pure (1), code 1 split evenly (0), weights 1/3 and 2/3;
    factor 1 sits on one code (1), factor 0 on two (0), weights 1/3 and 2/3."""
    from metrics.dci import dci_from_importance

    out = dci_from_importance(np.array([[1.0, 0.0], [1.0, 1.0]]))
    assert out["dci_disentanglement"] == pytest.approx(1 / 3, abs=1e-9)
    assert out["dci_completeness"] == pytest.approx(1 / 3, abs=1e-9)
    assert dci_from_importance(np.eye(2)) == pytest.approx(
        {"dci_disentanglement": 1.0, "dci_completeness": 1.0}, abs=1e-9)
    with pytest.raises(ValueError, match=r"DCI: importance must be \(D, K\), got shape \(2,\)"):
        dci_from_importance(np.ones(2))
    with pytest.raises(ValueError, match=r"DCI: disentanglement needs K >= 2 factors \(log base K"
                                         r"\), got K=1"):
        dci_from_importance(np.ones((3, 1)))
    with pytest.raises(ValueError, match=r"DCI: completeness needs D >= 2 code dims \(log base D"
                                         r"\), got D=1"):
        dci_from_importance(np.ones((1, 3)))
    for bad in (np.nan, np.inf, -0.1):
        r = np.eye(3)
        r[1, 2] = bad
        with pytest.raises(ValueError, match="^DCI: importance must be finite and non-negative$"):
            dci_from_importance(r)


@pytest.mark.parametrize("mode", ["exact", "fast", "hist"])
def test_dci_of_two_dims_two_factors_and_of_constant_codes(mode):
    """The smallest scoreable case (K = D = 2) is perfect for the identity code; a code of
    constant dims is never split on: importance 0, disentanglement and completeness 0."""
    c_tr, f_tr, c_te, f_te = _split(identity, 1)
    two = dci(c_tr[:, :2], f_tr[:, :2], c_te[:, :2], f_te[:, :2], mode=mode, random_state=0)
    assert two["dci_disentanglement"] > 0.95 and two["dci_completeness"] > 0.95
    assert two["dci_informativeness_train"] == 1.0 and two["dci_informativeness_test"] == 1.0
    flat_tr, flat_te = np.ones((len(c_tr), 2)), np.ones((len(c_te), 2))
    with pytest.warns(DegenerateInputWarning, match=r"^DCI: code dims \[0, 1\] are constant "
                                                    r"\(never split on, importance 0\)$"):
        flat = dci(flat_tr, f_tr, flat_te, f_te, mode=mode, random_state=0)
    assert flat["dci_disentanglement"] == pytest.approx(0.0, abs=1e-9)
    assert flat["dci_completeness"] == pytest.approx(0.0, abs=1e-9)
    # informativeness of a constant code: the accuracy of predicting the majority class
    majority = np.mean([np.mean(f_te[:, j] == np.bincount(f_tr[:, j]).argmax()) for j in range(3)])
    assert flat["dci_informativeness_test"] == pytest.approx(majority, abs=1e-12)


def test_dci_hist_shares_a_duplicated_dims_importance_equally():
    """Identical columns split one column's gain in equal parts; the other dims keep theirs."""
    from metrics.dci import dci_importance

    split = _split(identity, 2)
    single, *_ = dci_importance(*split, mode="hist", random_state=0)
    dup_split = (duplicated(split[0]), split[1], duplicated(split[2]), split[3])
    double, *_ = dci_importance(*dup_split, mode="hist", random_state=0)
    assert np.allclose(double[0], single[0] / 2, atol=1e-12)
    assert np.array_equal(double[0], double[3])
    assert np.allclose(double[1:3], single[1:3], atol=1e-12)
    assert np.allclose(double.sum(axis=0), 1.0)


def test_dci_from_importance_is_scale_free_and_computes_in_float64():
    """The scores depend on R's proportions only, whatever its total (sklearn's importances sum
    to K, LightGBM's gains to anything); float32 input is widened before any arithmetic."""
    from metrics.dci import dci_from_importance

    r = np.array([[0.3, 0.1], [0.0, 0.1]])  # total 0.5: below 1
    expected = dci_from_importance(r)
    for scale in (0.1, 10.0, 1e3):  # the 1e-11 added before normalising moves it by < 1e-8
        assert dci_from_importance(r * scale) == pytest.approx(expected, abs=1e-8)
    r32 = np.random.default_rng(0).random((5, 3)).astype(np.float32)
    assert dci_from_importance(r32) == dci_from_importance(r32.astype(np.float64))


def test_dci_importance_defaults_to_exact_and_names_itself_in_warnings():
    from metrics.dci import dci_importance

    c_tr, f_tr, c_te, f_te = _split(identity, 3, n_train=120, n_test=40)
    default = dci_importance(c_tr, f_tr, c_te, f_te, random_state=0)
    exact = dci_importance(c_tr, f_tr, c_te, f_te, mode="exact", random_state=0)
    for a, b in zip(default, exact, strict=True):
        assert np.array_equal(a, b)
    f_tr, f_te = f_tr.copy(), f_te.copy()
    f_tr[:, 1] = f_te[:, 1] = 2
    with pytest.warns(DegenerateInputWarning, match=r"^DCI: factors \[1\] take a single value and "
                                                    r"are excluded from the score$"):
        _, _, _, keep = dci_importance(c_tr, f_tr, c_te, f_te, mode="fast", random_state=0)
    assert keep.tolist() == [0, 2]


def test_dci_fits_each_mode_with_its_pinned_parameters(monkeypatch):
    """``fast`` is its own model (20 stages at rate 0.5), not the reference one: the calibration
    tests against ``exact`` would pass if both were the same fit."""
    from sklearn.ensemble import GradientBoostingClassifier

    import metrics.dci as dci_module

    seen: list[dict] = []

    def spy(**kwargs):
        seen.append(kwargs)
        return GradientBoostingClassifier(**kwargs)

    monkeypatch.setattr("sklearn.ensemble.GradientBoostingClassifier", spy)  # imported to fit
    split = _split(identity, 4, n_train=60, n_test=20)
    for mode, params in (("exact", dci_module.GBT_PARAMS), ("fast", dci_module.FAST_GBT_PARAMS)):
        seen.clear()
        dci(*split, mode=mode, random_state=0)
        assert len(seen) == 3
        for kwargs in seen:
            assert {k: v for k, v in kwargs.items() if k != "random_state"} == params
            assert isinstance(kwargs["random_state"], int)
    assert dci_module.FAST_GBT_PARAMS["n_estimators"] == 20
    assert dci_module.FAST_GBT_PARAMS["learning_rate"] == 0.5


def test_dci_dispatches_the_dearest_factors_first_and_passes_n_jobs(monkeypatch):
    """Factors with more classes are fitted first (5, 4 and 6 classes: order 2, 0, 1); the
    results come back in factor order; ``n_jobs`` reaches joblib from both entry points."""
    import metrics.dci as dci_module
    from metrics.dci import dci_importance

    order: list[int] = []
    jobs: list[int | None] = []

    def fake_fit(x_tr, y_tr, x_te, y_te, seed, mode):
        classes = np.unique(y_tr).size
        order.append(classes)
        importance = np.zeros(x_tr.shape[1])
        importance[SIZES.index(classes)] = 1.0  # the identity code: factor j on dim j
        return importance, classes / 10, classes / 100

    class SerialParallel:
        def __init__(self, n_jobs=None):
            jobs.append(n_jobs)

        def __call__(self, tasks):
            return [f(*args, **kwargs) for f, args, kwargs in tasks]

    monkeypatch.setattr(dci_module, "_fit_factor", fake_fit)
    monkeypatch.setattr("joblib.Parallel", SerialParallel)  # dci imports it when it fits
    split = _split(identity, 5, n_train=200, n_test=20)
    importance, acc_tr, acc_te, keep = dci_importance(*split, random_state=0, n_jobs=2)
    assert order == [6, 5, 4]
    assert np.array_equal(importance, np.eye(3)) and keep.tolist() == [0, 1, 2]
    assert acc_tr.tolist() == [0.5, 0.4, 0.6] and acc_te.tolist() == [0.05, 0.04, 0.06]
    scores = dci(*split, random_state=0, n_jobs=3)
    assert jobs == [2, 3]
    assert scores["dci_informativeness_train"] == pytest.approx(0.5)


def test_dci_checks_mode_and_settings():
    from metrics.dci import DCISettings

    split = _split(identity, 0, n_train=50, n_test=20)
    with pytest.raises(ValueError, match=r"DCI: mode must be one of \('exact', 'fast', 'hist'\), "
                                         r"got 'lgbm'"):
        dci(*split, mode="lgbm", random_state=0)
    with pytest.raises(ValueError, match=r"dci mode must be one of \('exact', 'fast', 'hist'\), "
                                         r"got 'slow'"):
        DCISettings(mode="slow")
    assert DCISettings().mode == "exact"


def test_representation_metrics_plumbing(monkeypatch):
    """The base seed is the caller's first draw in [0, 2**63 - 1); every metric's generator and
    the bank's come from it and their names; n_jobs and the bank overrides reach the bank;
    on_metric hears each metric's name in registry order; defaults are the quick profile."""
    import metrics.sampling as sampling

    seen_rngs, banks = [], []
    real_rng, real_bank = sampling.metric_rng, sampling.SampleBank

    def recording_rng(base, name):
        seen_rngs.append((base, name))
        return real_rng(base, name)

    def recording_bank(*args, **kwargs):
        banks.append((args[2], kwargs))
        return real_bank(*args, **kwargs)

    monkeypatch.setattr(sampling, "metric_rng", recording_rng)
    monkeypatch.setattr(sampling, "SampleBank", recording_bank)
    heard = []
    overrides = {**TINY, "bank": {"num_train": 150, "num_test": 90}}
    representation_metrics(DATA, rotated, np.random.default_rng(11), overrides=overrides,
                           n_jobs=2, on_metric=heard.append)
    base = int(np.random.default_rng(11).integers(0, 2**63 - 1))
    assert seen_rngs == [(base, name) for name in ("bank", *METRICS.names())]
    assert heard == list(METRICS.names())
    (settings, kwargs), = banks
    assert (settings.num_train, settings.num_test) == (150, 90)
    assert kwargs == {"n_jobs": 2, "reuse": None}

    assert metric_settings() == metric_settings("quick")
    assert metric_settings()["profile"] == "quick"
    assert list(metric_settings("paper"))[0] == "profile"
    assert sampling.resolved_settings() == sampling.resolved_settings("quick")
    assert sampling.resolved_settings("quick", {"bank": {"num_test": 7}})["bank"].num_test == 7
    with pytest.raises(ValueError, match="^rng must be a np.random.Generator, got int$"):
        representation_metrics(DATA, rotated, 42)


def test_registry_records_what_it_is_given(monkeypatch):
    """register_metric keeps name, description, settings, profiles and keys; describe declares a
    key with its metadata; the registry's first lookup imports every public metric module so
    that their registrations run (core.registry's one rule for built-ins)."""
    import sys
    from dataclasses import dataclass

    import metrics.registry as registry

    @dataclass(frozen=True)
    class NoSettings:
        pass

    keys = (ScoreKey("toy_k", "toy key", high=2.0),)
    compute = registry.register_metric("toy-kept", description="kept as given",
                                       settings=NoSettings, keys=keys,
                                       profiles={"quick": {}})(lambda bank, s, rng: {})
    try:
        entry = METRICS.entry("toy-kept")
        assert entry.description == "kept as given"
        assert entry.obj == registry.MetricSpec("toy-kept", compute, NoSettings, {"quick": {}},
                                                keys)
    finally:
        METRICS._entries.pop("toy-kept")
    monkeypatch.setattr(registry, "_DESCRIBED", dict(registry._DESCRIBED))
    info = registry.describe("toy_described", "declared here", higher_is_better=False,
                             tolerance=0.5)
    assert info == ScoreKey("toy_described", "declared here", higher_is_better=False,
                            tolerance=0.5)
    assert score_keys()["toy_described"] is info

    # a fresh registry filled by importing the package's modules again, on its first lookup
    monkeypatch.setattr(METRICS, "_entries", {})
    monkeypatch.setattr(METRICS, "_loaded", False)
    import metrics

    for name in [m for m in sys.modules
                 if m.startswith("metrics.") and m != "metrics.registry"]:
        monkeypatch.delitem(sys.modules, name)  # restored afterwards, with the package's
        monkeypatch.delattr(metrics, name.split(".")[1], raising=False)  # attributes
    assert "metrics.mig" not in sys.modules
    assert sorted(METRICS.names()) == ["betavae", "dci", "fvm", "mig", "modularity", "sap"]
    imported = {m for m in sys.modules if m.startswith("metrics.")}
    assert {"metrics.discovery", "metrics.sampling", "metrics.bank"} <= imported
