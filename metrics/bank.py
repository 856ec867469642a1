"""The sample bank every registered metric draws from: ground truth + encoder + shared sets.

``data`` is duck typed like :class:`datasets.base.GroundTruthData` (``factor_sizes``,
``sample_factors(n, rng)``, ``observations(factors) -> uint8 (n, H, W, C)``); ``represent`` maps
such a uint8 batch to float codes (n, D). The i.i.d. train and test sets (``num_train`` and
``num_test`` factor draws, train first) are rendered and encoded once, on first use, and shared by
every metric that scores codes against factors (MIG, SAP, DCI, Modularity); metrics that need
structured samples (FactorVAE and BetaVAE votes) encode their own through :func:`encode` with the
bank's chunk size and memo. Everything is encoded in chunks of ``chunk_size`` images with all
factors drawn up front, so the numbers do not depend on the chunk size.

Code reuse (:class:`CodeMemo`): when ``represent`` declares ``batch_invariant = True`` (each
row's code is the same whatever batch, batch size >= :data:`MIN_BATCH` or position it is encoded
in, as for :meth:`methods.vae_common.VAEEncoder.represent`), the bank renders and encodes every
distinct factor row once per bank and every later request of that row (a duplicate in a vote
batch, in another metric's samples) reuses its code. Which samples are drawn does not change, so
the scores are the same as without reuse; a probe on the first batch (a reversed sub-batch
re-encoded and compared bit for bit) turns reuse off, with a warning, where the declaration does
not hold.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from datasets.base import GroundTruthData
from metrics._common import check_codes, warn_degenerate

Represent = Callable[[np.ndarray], Any]
CHUNK_SIZE = 256
# The smallest batch a reused code is encoded in (fewer distinct rows are padded with repeats).
MIN_BATCH = 32
# Most rows a CodeMemo keeps (about 80 MB of float64 codes at D = 10); later rows are encoded
# without being kept, which changes no number.
MEMO_LIMIT = 1 << 20


@dataclass(frozen=True)
class BankSettings:
    """Sizes of the shared i.i.d. sets (the reference study's: 10,000 train, 5,000 test)."""

    num_train: int = 10000
    num_test: int = 5000

    def __post_init__(self) -> None:
        if self.num_train < 1 or self.num_test < 1:
            raise ValueError(f"num_train and num_test must be >= 1, got {self.num_train}, "
                             f"{self.num_test}")


BANK_PROFILES: dict[str, dict[str, Any]] = {"quick": {"num_train": 3000, "num_test": 1500}}


def check_data(data: GroundTruthData) -> tuple[int, ...]:
    """The factor sizes of ``data``; a clear error if it is not ground-truth data."""
    for attr in ("factor_sizes", "sample_factors", "observations"):
        if not hasattr(data, attr):
            raise ValueError(f"data must provide {attr!r} like datasets.base.GroundTruthData")
    sizes = tuple(int(s) for s in data.factor_sizes)
    if not sizes or min(sizes) < 1:
        raise ValueError(f"data.factor_sizes must be positive, got {sizes}")
    return sizes


def chunks(num: int, size: int) -> Iterator[slice]:
    for start in range(0, num, size):
        yield slice(start, min(start + size, num))


def even_chunks(num: int, size: int) -> Iterator[slice]:
    """``ceil(num / size)`` consecutive slices of near-equal length (each at most ``size``)."""
    pieces = max(1, -(-num // size))
    bounds = [num * i // pieces for i in range(pieces + 1)]
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        yield slice(start, stop)


def _encode_images(represent: Represent, images: np.ndarray) -> np.ndarray:
    codes = np.asarray(represent(images))
    if codes.ndim != 2 or codes.shape[0] != images.shape[0]:
        raise ValueError(
            f"represent must return (n, D) codes for n={images.shape[0]} images, "
            f"got shape {codes.shape}"
        )
    return check_codes(codes, "represent", "returned codes")


def encode(
    data: GroundTruthData, represent: Represent, factors: np.ndarray, *,
    chunk_size: int = CHUNK_SIZE,
    memo: CodeMemo | None = None,
) -> np.ndarray:
    """Render ``factors`` (n, K), n >= 1, and encode them in chunks: float64 codes (n, D). With
    ``memo`` only rows it has not seen are rendered and encoded (same codes, see
    :class:`CodeMemo`)."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    factors = np.asarray(factors)
    if factors.ndim != 2 or factors.shape[0] == 0:
        raise ValueError(f"factors must be (n, K) with n >= 1, got shape {factors.shape}")
    if memo is not None and memo.enabled:
        return memo.encode(data, represent, factors, chunk_size)
    parts = []
    for rows in chunks(factors.shape[0], chunk_size):
        parts.append(_encode_images(represent, data.observations(factors[rows])))
    return np.concatenate(parts, axis=0)


def is_batch_invariant(represent: Represent) -> bool:
    """Whether ``represent`` declares per-row codes independent of the batch around them."""
    return bool(getattr(represent, "batch_invariant", False))


class CodeMemo:
    """Codes of the factor rows one bank has encoded, keyed by the row (exact reuse).

    Valid only for a ``represent`` whose code of a row does not depend on the batch it is
    encoded in (batch size >= :data:`MIN_BATCH`, position, the other rows). New rows are
    rendered once per distinct row and encoded in near-equal chunks of at most ``chunk_size``
    (at least :data:`MIN_BATCH`, padded with repeats of the rows); the first chunk is also
    re-encoded reversed in a batch of ``MIN_BATCH`` rows, and any difference turns the memo off
    (a warning) and that request is encoded the plain way. ``requested`` / ``encoded`` count
    rows asked for and rows rendered and encoded.
    """

    def __init__(self, limit: int = MEMO_LIMIT) -> None:
        self.enabled = True
        self.limit = limit
        self.requested = 0
        self.encoded = 0
        self._index: dict[bytes, int] = {}
        self._codes: np.ndarray | None = None
        self._probed = False

    def __len__(self) -> int:
        return len(self._index)

    def _store(self, keys: list[bytes], codes: np.ndarray) -> None:
        room = min(len(keys), self.limit - len(self._index))
        if room <= 0:
            return
        start = len(self._index)
        if self._codes is None:
            self._codes = np.empty((max(room, 4096), codes.shape[1]), dtype=np.float64)
        elif self._codes.shape[1] != codes.shape[1]:
            raise ValueError(f"represent returned {codes.shape[1]} dims, earlier "
                             f"{self._codes.shape[1]}")
        if start + room > self._codes.shape[0]:
            grown = np.empty((max(start + room, 2 * self._codes.shape[0]), codes.shape[1]))
            grown[:start] = self._codes[:start]
            self._codes = grown
        self._codes[start:start + room] = codes[:room]
        self._index.update(zip(keys[:room], range(start, start + room), strict=True))

    def _probe(self, represent: Represent, images: np.ndarray, codes: np.ndarray) -> bool:
        """Whether a reversed sub-batch of ``MIN_BATCH`` rows gives the same codes."""
        self._probed = True
        take = min(MIN_BATCH, images.shape[0])
        again = _encode_images(represent, np.ascontiguousarray(images[:take][::-1]))
        if np.array_equal(again[::-1], codes[:take]):
            return True
        self.enabled = False
        warnings.warn("represent declares batch_invariant but its codes depend on the batch; "
                      "codes are not reused", RuntimeWarning, stacklevel=4)
        return False

    def _encode_new(self, data: GroundTruthData, represent: Represent, factors: np.ndarray,
                    chunk_size: int) -> np.ndarray | None:
        parts = []
        for rows in even_chunks(factors.shape[0], max(chunk_size, MIN_BATCH)):
            block = factors[rows]
            if block.shape[0] < MIN_BATCH:
                block = np.resize(block, (MIN_BATCH, block.shape[1]))  # repeats the rows
            images = data.observations(block)
            codes = _encode_images(represent, images)
            if not self._probed and not self._probe(represent, images, codes):
                return None
            parts.append(codes[: rows.stop - rows.start])
        self.encoded += factors.shape[0]
        return np.concatenate(parts, axis=0).astype(np.float64, copy=False)

    def encode(self, data: GroundTruthData, represent: Represent, factors: np.ndarray,
               chunk_size: int) -> np.ndarray:
        """Codes (n, D) of ``factors`` (n, K), n >= 1 (checked by :func:`encode`), rendering
        and encoding unseen rows only."""
        factors = np.ascontiguousarray(factors, dtype=np.int64)
        n = factors.shape[0]
        keys = factors.view(np.dtype((np.void, factors.dtype.itemsize * factors.shape[1])))
        keys = keys.ravel().tolist()
        index = self._index
        where = np.fromiter((index.get(key, -1) for key in keys), dtype=np.int64, count=n)
        missing = np.flatnonzero(where < 0)
        new: dict[bytes, int] = {}
        first = []
        for i in missing.tolist():
            if new.setdefault(keys[i], len(first)) == len(first):
                first.append(i)
        codes_new = None
        if first:
            codes_new = self._encode_new(data, represent, factors[first], chunk_size)
            if codes_new is None:  # the probe failed: encode this request the plain way
                return encode(data, represent, factors, chunk_size=chunk_size)
        self.requested += n
        width = codes_new.shape[1] if codes_new is not None else self._codes.shape[1]
        out = np.empty((n, width), dtype=np.float64)
        found = where >= 0
        if found.any():
            out[found] = self._codes[where[found]]
        if codes_new is not None:
            out[missing] = codes_new[[new[keys[i]] for i in missing.tolist()]]
            self._store([keys[i] for i in first], codes_new)
        return out


def sample_codes(
    data: GroundTruthData,
    represent: Represent,
    num: int,
    rng: np.random.Generator,
    *,
    chunk_size: int = CHUNK_SIZE,
    memo: CodeMemo | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``num`` i.i.d. factor draws and their codes: (codes (num, D), factors (num, K))."""
    check_data(data)
    if num < 1:
        raise ValueError(f"num must be >= 1, got {num}")
    factors = np.asarray(data.sample_factors(num, rng), dtype=np.int64)
    return encode(data, represent, factors, chunk_size=chunk_size, memo=memo), factors


def varying_factors(sizes: tuple[int, ...], metric: str) -> np.ndarray:
    """Indices of factors with more than one value (a single-valued one is never fixed)."""
    varying = np.flatnonzero(np.array(sizes) > 1)
    if varying.size == 0:
        raise ValueError(f"{metric}: every factor has a single value; nothing to score")
    if varying.size < len(sizes):
        skipped = np.flatnonzero(np.array(sizes) == 1).tolist()
        warn_degenerate(f"{metric}: factors {skipped} have a single value and are never fixed")
    return varying


class SampleBank:
    """Ground truth + encoder + the shared train/test sets (encoded lazily, once).

    ``reuse``: keep every encoded row's code for the bank's lifetime (:class:`CodeMemo`); by
    default when ``represent`` declares ``batch_invariant``. ``memo`` is None without reuse.
    """

    def __init__(self, data: GroundTruthData, represent: Represent, settings: BankSettings,
                 rng: np.random.Generator, *, chunk_size: int = CHUNK_SIZE,
                 n_jobs: int | None = None, reuse: bool | None = None) -> None:
        self.factor_sizes = check_data(data)
        self.data = data
        self.represent = represent
        self.settings = settings
        self.chunk_size = chunk_size
        self.n_jobs = n_jobs
        self._rng = rng
        if reuse is None:
            reuse = is_batch_invariant(represent)
        self.memo: CodeMemo | None = CodeMemo() if reuse else None

    @cached_property
    def _split(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        train = sample_codes(self.data, self.represent, self.settings.num_train, self._rng,
                             chunk_size=self.chunk_size, memo=self.memo)
        test = sample_codes(self.data, self.represent, self.settings.num_test, self._rng,
                            chunk_size=self.chunk_size, memo=self.memo)
        return (*train, *test)

    @property
    def train(self) -> tuple[np.ndarray, np.ndarray]:
        """(codes (num_train, D), factors (num_train, K))."""
        return self._split[0], self._split[1]

    @property
    def split(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(codes_train, factors_train, codes_test, factors_test)."""
        return self._split
