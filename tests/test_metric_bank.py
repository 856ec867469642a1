"""Known answers for the sample bank: chunking, validation, code reuse and the shared sets.

The data here are duck typed (no GroundTruthData base) as the bank allows; an image is its factor
row, so every code can be checked exactly, and each encoder records the batches it is given.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from metrics._common import DegenerateInputWarning
from metrics.bank import (
    BANK_PROFILES,
    CHUNK_SIZE,
    MIN_BATCH,
    BankSettings,
    CodeMemo,
    SampleBank,
    check_data,
    chunks,
    encode,
    even_chunks,
    is_batch_invariant,
    sample_codes,
    varying_factors,
)


class Grid:
    """Factor grid whose observation of a row is the row itself, uint8 (n, 1, 1, K)."""

    def __init__(self, sizes: tuple[int, ...] = (5, 4, 6)) -> None:
        self.factor_sizes = sizes

    def sample_factors(self, num: int, rng: np.random.Generator) -> np.ndarray:
        return np.stack([rng.integers(0, s, size=num) for s in self.factor_sizes], axis=1)

    def observations(self, factors: np.ndarray) -> np.ndarray:
        factors = np.asarray(factors)
        return factors.astype(np.uint8).reshape(len(factors), 1, 1, -1)


class Recorder:
    """Encoder returning ``scale`` x the factor row (plus ``extra`` columns of the row sum),
    keeping every batch it is given."""

    def __init__(self, scale: float = 0.5, extra: int = 0, invariant: bool = False) -> None:
        self.scale, self.extra, self.batches = scale, extra, []
        if invariant:
            self.batch_invariant = True

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.batches.append(images.reshape(len(images), -1).astype(np.int64))
        rows = self.batches[-1].astype(np.float64)
        sums = np.repeat(rows.sum(axis=1, keepdims=True), self.extra, axis=1)
        return np.concatenate([rows * self.scale, sums], axis=1)

    @property
    def sizes(self) -> list[int]:
        return [len(b) for b in self.batches]


def codes_of(factors: np.ndarray, scale: float = 0.5) -> np.ndarray:
    return np.asarray(factors, dtype=np.float64) * scale


def distinct_rows(num: int, sizes: tuple[int, ...] = (5, 4, 6)) -> np.ndarray:
    """The first ``num`` rows of the grid in lexicographic order."""
    return np.stack(np.unravel_index(np.arange(num), sizes), axis=1)


def memo_with(rows: np.ndarray, data: Grid) -> CodeMemo:
    """A memo holding the codes of ``rows`` (3 dims)."""
    memo = CodeMemo()
    encode(data, Recorder(invariant=True), rows, memo=memo)
    return memo


def test_settings_and_profiles_known_values() -> None:
    assert (BankSettings().num_train, BankSettings().num_test) == (10000, 5000)
    assert BANK_PROFILES == {"quick": {"num_train": 3000, "num_test": 1500}}
    assert BankSettings(num_train=1, num_test=1).num_test == 1
    for train, test in ((0, 5), (5, 0)):
        with pytest.raises(ValueError, match=re.escape(
                f"num_train and num_test must be >= 1, got {train}, {test}")):
            BankSettings(num_train=train, num_test=test)


def test_check_data_names_what_is_missing() -> None:
    assert check_data(Grid(np.array([1, 2]))) == (1, 2)
    assert all(type(s) is int for s in check_data(Grid(np.array([3, 2]))))

    class Partial:
        factor_sizes = (2,)
        observations = None

    for data, missing in ((object(), "factor_sizes"), (Partial(), "sample_factors")):
        with pytest.raises(ValueError, match=re.escape(
                f"data must provide '{missing}' like datasets.base.GroundTruthData")):
            check_data(data)
    Partial.sample_factors = None
    del Partial.observations
    with pytest.raises(ValueError, match="provide 'observations'"):
        check_data(Partial())
    for sizes in ((), (3, 0)):
        with pytest.raises(ValueError, match=re.escape(
                f"data.factor_sizes must be positive, got {sizes}")):
            check_data(Grid(sizes))


def test_chunks_and_even_chunks_known_slices() -> None:
    def bounds(pieces) -> list[tuple[int, int]]:
        return [(s.start, s.stop) for s in pieces]

    assert bounds(chunks(10, 4)) == [(0, 4), (4, 8), (8, 10)]
    assert bounds(chunks(8, 4)) == [(0, 4), (4, 8)]
    assert bounds(chunks(0, 4)) == []
    assert bounds(even_chunks(10, 4)) == [(0, 3), (3, 6), (6, 10)]
    assert bounds(even_chunks(8, 4)) == [(0, 4), (4, 8)]
    assert bounds(even_chunks(9, 4)) == [(0, 3), (3, 6), (6, 9)]
    assert bounds(even_chunks(3, 4)) == [(0, 3)]
    assert bounds(even_chunks(0, 4)) == [(0, 0)]


def test_encode_chunks_validates_and_returns_float64() -> None:
    data, factors = Grid(), distinct_rows(10)
    for chunk_size, sizes in ((4, [4, 4, 2]), (1, [1] * 10), (10, [10])):
        encoder = Recorder()
        codes = encode(data, encoder, factors, chunk_size=chunk_size)
        assert encoder.sizes == sizes
        assert codes.dtype == np.float64 and np.array_equal(codes, codes_of(factors))
        assert np.array_equal(np.concatenate(encoder.batches), factors)
    encoder = Recorder()
    encode(Grid((20, 20, 20)), encoder, distinct_rows(300, (20, 20, 20)))
    assert encoder.sizes == [CHUNK_SIZE, 300 - CHUNK_SIZE] == [256, 44]
    assert np.array_equal(encode(data, lambda x: x.reshape(len(x), -1), factors[:3]),
                          factors[:3].astype(np.float64))
    with pytest.raises(ValueError, match="^chunk_size must be >= 1, got 0$"):
        encode(data, Recorder(), factors, chunk_size=0)
    for bad in (factors[:0], factors[0]):
        with pytest.raises(ValueError, match=re.escape(
                f"factors must be (n, K) with n >= 1, got shape {bad.shape}")):
            encode(data, Recorder(), bad)
        with pytest.raises(ValueError, match="factors must be"):
            encode(data, Recorder(invariant=True), bad, memo=CodeMemo())
    for shape in ((3,), (2, 2), (3, 1, 1)):
        with pytest.raises(ValueError, match=re.escape(
                f"represent must return (n, D) codes for n=3 images, got shape {shape}")):
            encode(data, lambda x, shape=shape: np.zeros(shape), factors[:3])
    with pytest.raises(ValueError, match=re.escape(
            "represent: returned codes contain NaN or inf in code dims [1]")):
        encode(data, lambda x: np.stack([np.zeros(len(x)), np.full(len(x), np.nan)], 1),
               factors[:3])


def test_is_batch_invariant_reads_the_declaration() -> None:
    assert not is_batch_invariant(Recorder())
    assert is_batch_invariant(Recorder(invariant=True)) is True

    def declared(images: np.ndarray) -> np.ndarray:
        return images

    declared.batch_invariant = 1
    assert is_batch_invariant(declared) is True
    declared.batch_invariant = 0
    assert is_batch_invariant(declared) is False


def test_code_memo_starts_empty() -> None:
    memo = CodeMemo()
    assert (memo.enabled, memo.limit, memo.requested, memo.encoded, len(memo)) == (
        True, 1 << 20, 0, 0, 0)
    assert CodeMemo(limit=7).limit == 7


def test_code_memo_encodes_unseen_rows_once_in_first_seen_order() -> None:
    data, memo, encoder = Grid(), CodeMemo(), Recorder(invariant=True)
    rows = distinct_rows(50)
    first = rows[[3, 1, 3, 0, 1]]
    assert np.array_equal(encode(data, encoder, first, memo=memo), codes_of(first))
    # one padded batch of the 3 new rows (repeated cyclically to MIN_BATCH), then the probe: the
    # same batch's first MIN_BATCH rows reversed
    padded = rows[[3, 1, 0] * 11][:MIN_BATCH]
    assert encoder.sizes == [MIN_BATCH, MIN_BATCH]
    assert np.array_equal(encoder.batches[0], padded)
    assert np.array_equal(encoder.batches[1], padded[::-1])
    assert (memo.requested, memo.encoded, len(memo)) == (5, 3, 3)
    # seen rows come from the memo, new ones are encoded (no second probe), order kept
    second = rows[[0, 7, 3, 7, 9]]
    assert np.array_equal(encode(data, encoder, second, memo=memo), codes_of(second))
    assert np.array_equal(encoder.batches[2], rows[[7, 9] * 16])
    assert (len(encoder.batches), memo.requested, memo.encoded, len(memo)) == (3, 10, 5, 5)
    # a request of seen rows only encodes nothing
    third = rows[[9, 0, 0]]
    assert np.array_equal(encode(data, encoder, third, memo=memo), codes_of(third))
    assert (len(encoder.batches), memo.requested, memo.encoded) == (3, 13, 5)


def test_code_memo_chunks_new_rows_evenly_and_probes_the_first_chunk_only() -> None:
    data = Grid((20, 20, 20))
    memo, encoder = CodeMemo(), Recorder(invariant=True)
    rows = distinct_rows(300, (20, 20, 20))
    codes = encode(data, encoder, rows, chunk_size=256, memo=memo)
    assert np.array_equal(codes, codes_of(rows)) and codes.dtype == np.float64
    assert encoder.sizes == [150, MIN_BATCH, 150]
    assert np.array_equal(encoder.batches[1], rows[:MIN_BATCH][::-1])
    # a chunk size below MIN_BATCH is raised to it: 70 rows in three padded chunks of 23-24
    memo, encoder = CodeMemo(), Recorder(invariant=True)
    codes = encode(data, encoder, rows[:70], chunk_size=1, memo=memo)
    assert np.array_equal(codes, codes_of(rows[:70]))
    assert encoder.sizes == [MIN_BATCH] * 4
    assert np.array_equal(encoder.batches[2][:23], rows[23:46])
    assert np.array_equal(encoder.batches[3][:24], rows[46:70])


def test_code_memo_keeps_at_most_its_limit_and_grows_its_store() -> None:
    data, encoder = Grid((20, 20, 40)), Recorder(invariant=True)
    rows = distinct_rows(12297, (20, 20, 40))
    memo = CodeMemo(limit=3)
    encode(data, encoder, rows[:1], memo=memo)
    assert len(memo) == 1  # room for exactly one row
    encode(data, encoder, rows[1:5], memo=memo)
    assert len(memo) == 3 and memo.encoded == 5
    again = encode(data, encoder, rows[[4, 0, 3]], memo=memo)  # rows 3, 4 were not kept
    assert np.array_equal(again, codes_of(rows[[4, 0, 3]]))
    assert memo.encoded == 7 and len(memo) == 3
    assert np.array_equal(encoder.batches[-1][:2], rows[[4, 3]])
    # the store starts at 4,096 rows, fills up before it grows, grows to twice its size or to
    # what a request needs, and keeps the earlier codes
    memo, capacities, start = CodeMemo(), [], 0
    for stop in (10, 4096, 12296, 12297):
        encode(data, encoder, rows[start:stop], memo=memo)
        capacities.append(memo._codes.shape[0])
        start = stop
    assert capacities == [4096, 4096, 12296, 24592] and len(memo) == 12297
    count = len(encoder.batches)
    assert np.array_equal(encode(data, encoder, rows[::-1], memo=memo), codes_of(rows[::-1]))
    # rows are keyed by value, whatever their integer type
    assert np.array_equal(encode(data, encoder, rows[:50].astype(np.int32), memo=memo),
                          codes_of(rows[:50]))
    assert len(encoder.batches) == count and memo.encoded == 12297
    # a memo holds codes of one width
    with pytest.raises(ValueError, match=re.escape("represent returned 4 dims, earlier 3")):
        encode(data, Recorder(extra=1, invariant=True), rows[8:20], memo=memo_with(rows[:8], data))


def test_code_memo_turns_off_for_batch_dependent_codes() -> None:
    data = Grid((20, 20, 20))
    rows = distinct_rows(300, (20, 20, 20))

    class Positional(Recorder):
        def __call__(self, images: np.ndarray) -> np.ndarray:
            return super().__call__(images) + np.arange(len(images))[:, None]

    memo, encoder = CodeMemo(), Positional(invariant=True)
    with pytest.warns(RuntimeWarning, match=re.escape(
            "represent declares batch_invariant but its codes depend on the batch; codes are "
            "not reused")):
        codes = encode(data, encoder, rows, chunk_size=100, memo=memo)
    # the first chunk and its probe, then the request again the plain way in chunks of 100
    assert encoder.sizes == [100, MIN_BATCH, 100, 100, 100]
    assert np.array_equal(codes, codes_of(rows) + np.tile(np.arange(100), 3)[:, None])
    assert memo.enabled is False and (memo.requested, memo.encoded, len(memo)) == (0, 0, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encode(data, encoder, rows[:10], memo=memo)  # off: plain, no second warning
    assert encoder.sizes[-1] == 10


def test_sample_codes_draws_then_encodes() -> None:
    data, encoder = Grid(), Recorder()
    codes, factors = sample_codes(data, encoder, 7, np.random.default_rng(4), chunk_size=3)
    want = data.sample_factors(7, np.random.default_rng(4))
    assert factors.dtype == np.int64 and np.array_equal(factors, want)
    assert np.array_equal(codes, codes_of(want)) and encoder.sizes == [3, 3, 1]
    assert sample_codes(data, encoder, 1, np.random.default_rng(0))[0].shape == (1, 3)

    class SmallInts(Grid):
        def sample_factors(self, num: int, rng: np.random.Generator) -> np.ndarray:
            return super().sample_factors(num, rng).astype(np.uint8)

    factors = sample_codes(SmallInts(), encoder, 7, np.random.default_rng(4))[1]
    assert factors.dtype == np.int64 and np.array_equal(factors, want)
    with pytest.raises(ValueError, match="^num must be >= 1, got 0$"):
        sample_codes(data, encoder, 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="data must provide 'factor_sizes'"):
        sample_codes(object(), encoder, 3, np.random.default_rng(0))
    memo, encoder = CodeMemo(), Recorder(invariant=True)
    codes, factors = sample_codes(data, encoder, 40, np.random.default_rng(1), memo=memo)
    assert memo.requested == 40 and np.array_equal(codes, codes_of(factors))


def test_varying_factors_skip_single_valued_ones() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert varying_factors((2, 3), "m").tolist() == [0, 1]
    with pytest.warns(DegenerateInputWarning,
                      match=r"^m: factors \[1, 3\] have a single value and are never fixed$"):
        assert varying_factors((3, 1, 2, 1), "m").tolist() == [0, 2]
    with pytest.raises(ValueError, match="^m: every factor has a single value; nothing to score$"):
        varying_factors((1, 1), "m")


def test_sample_bank_draws_train_then_test_once() -> None:
    data, encoder = Grid(), Recorder()
    bank = SampleBank(data, encoder, BankSettings(num_train=30, num_test=20),
                      np.random.default_rng(5), chunk_size=8, n_jobs=3)
    assert bank.factor_sizes == (5, 4, 6) and bank.n_jobs == 3 and bank.chunk_size == 8
    assert bank.data is data and bank.represent is encoder and bank.memo is None
    rng = np.random.default_rng(5)
    train = data.sample_factors(30, rng)
    test = data.sample_factors(20, rng)
    codes_train, factors_train, codes_test, factors_test = bank.split
    assert np.array_equal(factors_train, train) and np.array_equal(factors_test, test)
    assert np.array_equal(codes_train, codes_of(train))
    assert np.array_equal(codes_test, codes_of(test))
    assert encoder.sizes == [8, 8, 8, 6, 8, 8, 4]
    assert bank.train[0] is codes_train and bank.train[1] is factors_train
    assert len(encoder.batches) == 7  # cached: no second encoding
    with pytest.raises(ValueError, match="data must provide"):
        SampleBank(object(), encoder, BankSettings(), np.random.default_rng(0))


def test_sample_bank_reuse_follows_the_declaration_unless_told() -> None:
    settings, rng = BankSettings(num_train=5, num_test=5), np.random.default_rng(0)
    plain, invariant = Recorder(), Recorder(invariant=True)
    assert SampleBank(Grid(), plain, settings, rng).memo is None
    assert isinstance(SampleBank(Grid(), invariant, settings, rng).memo, CodeMemo)
    assert SampleBank(Grid(), invariant, settings, rng, reuse=False).memo is None
    assert isinstance(SampleBank(Grid(), plain, settings, rng, reuse=True).memo, CodeMemo)
    bank = SampleBank(Grid(), invariant, settings, np.random.default_rng(2))
    assert len(bank.split) == 4 and bank.memo.requested == 10
