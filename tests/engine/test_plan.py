"""Choosing the engine and the block sizes within a memory budget."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from manylm.engine.plan import (
    GIB,
    MIB,
    PER_FEATURE_BYTES,
    choose_engine,
    parse_memory,
    plan_streaming,
)
from manylm.errors import InputError
from manylm.moderate.ebayes import moderate_variances


@pytest.mark.parametrize(("text", "expected"), [
    ("300M", 300 * MIB), ("300MB", 300 * MIB), ("300 MiB", 300 * MIB), ("1.5G", int(1.5 * GIB)),
    ("2g", 2 * GIB), ("512k", 512 * 1024), ("1000000", 1_000_000), ("1T", 1024**4),
])
def test_parse_memory(text: str, expected: int) -> None:
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "-3M", "3X", "0", "1.2.3G"])
def test_parse_memory_refuses_nonsense(text: str) -> None:
    with pytest.raises(InputError, match="--memory"):
        parse_memory(text)


def test_engine_follows_the_size_and_the_budget() -> None:
    assert choose_engine(None, 100, None, n_features=20_000, available=8 * GIB) == "in-memory"
    assert choose_engine(None, 100, None, n_features=10_000_000,
                         available=8 * GIB) == "streaming"
    assert choose_engine(None, 50, 300 * MIB, n_features=2_000_000) == "streaming"
    assert choose_engine(None, 50, 300 * MIB, n_features=20_000) == "in-memory"
    assert choose_engine(None, 50, 1, n_features=10**8, streamable=False) == "in-memory"
    # Larger than ~10^5 x 100, a streamable matrix is streamed even where memory would hold
    # it: faster, as well as leaner (IN_MEMORY_MOST).
    assert choose_engine(None, 100, None, n_features=90_000, available=64 * GIB) == "in-memory"
    assert choose_engine(None, 100, None, n_features=120_000,
                         available=64 * GIB) == "streaming"
    assert choose_engine(None, 100, 20 * GIB, n_features=1_000_000) == "streaming"


def test_plan_fits_in_the_budget() -> None:
    plan = plan_streaming(2_000_000, 50, 6, itemsize=4, memory=300 * MIB, n_jobs=2,
                          natural_block_rows=10_000)
    assert plan.spill  # the summaries (~0.3 GB) do not fit beside the rest
    in_flight = (plan.n_workers + plan.prefetch + 1) * plan.block_rows * 50 * 4
    fixed = 2_000_000 * plan.per_feature_bytes + plan.n_workers * 32 * MIB
    assert fixed + in_flight <= 300 * MIB
    tiny = plan_streaming(2500, 12, 3, memory=2 * MIB, n_jobs=2)
    assert tiny.spill and 64 <= tiny.block_rows < 2500
    assert plan.block_rows % 10_000 == 0  # aligned with the storage's blocks
    roomy = plan_streaming(2_000_000, 50, 6, itemsize=4, memory=4 * GIB, n_jobs=2)
    assert not roomy.spill


def test_too_small_a_budget_names_the_minimum() -> None:
    with pytest.raises(InputError, match=r"--memory 50.0 MiB is too small .* Give --memory \d+M"):
        plan_streaming(1_000_000, 100, 3, memory=50 * MIB)


def test_the_refusal_names_what_its_figure_is_made_of() -> None:
    """2M x 20 in row groups of 209,715 rows: 72 bytes per feature (137.3 MiB) for the prior
    and the adjustment, and two decoded row groups (64 MiB) in the reader."""
    with pytest.raises(InputError) as info:
        plan_streaming(2_000_000, 20, 3, memory=150 * MIB, natural_block_rows=209_715,
                       n_jobs=2)
    assert ("the steps over all features (the prior, the p-value adjustment) hold 72 bytes "
            "per feature (137.3 MiB), and the reader keeps up to 2 stored blocks of 209,715 "
            "rows decoded (64.0 MiB)") in str(info.value)
    minimum = int(str(info.value).rsplit("--memory ", 1)[1].split("M")[0])
    plan_streaming(2_000_000, 20, 3, memory=minimum * MIB, natural_block_rows=209_715,
                   n_jobs=2)  # the minimum named is enough


def test_a_stored_block_larger_than_the_matrix_counts_as_the_matrix() -> None:
    """A contiguous .h5ad X is one stored block of ~32 MB of rows, whatever the matrix holds:
    the reader's cache is at most the matrix (2,500 x 12 float64: 240 kB, not 64 MiB)."""
    plan = plan_streaming(2500, 12, 3, memory=1 * MIB, natural_block_rows=349_525, n_jobs=2)
    assert plan.block_rows <= 2500


# (True, True) is left out: its lowess fit takes seconds at this size (measured at 10^6
# features: 163 bytes per feature at the peak, plus the 24 of the inputs).
@pytest.mark.parametrize(("trend", "robust"), [(False, False), (True, False), (False, True)])
def test_per_feature_memory_of_the_prior_is_as_documented(trend: bool, robust: bool) -> None:
    n = 200_000
    rng = np.random.default_rng(0)
    variance = 0.2 / rng.chisquare(4, n) * rng.chisquare(20, n) / 20
    df = np.full(n, 20.0)
    mean = rng.normal(8, 1, n)
    tracemalloc.start()
    moderate_variances(variance, df, covariate=mean if trend else None, robust=robust)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    held = 3 * 8 * n  # the three input vectors
    fixed = 16 * MIB  # work arrays that do not grow with n (the lowess fits)
    assert peak + held <= PER_FEATURE_BYTES[(trend, robust)] * n + fixed
