"""The compiled shortest round-trip float text (Ryū) against Arrow's cast and Python's repr."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from manylm.io.number_text import (
    MAX_FLOAT_CHARS,
    MAX_INT_CHARS,
    format_float,
    write_float,
    write_int,
)

EDGES = [0.0, -0.0, 1.0, -1.0, 100.0, 1e-7, 1e-6, 1.5e-6, 1e-5, 0.1, 0.3, 2 / 3, 123456.0,
         1e9, 1.5e9, 9999999999.0, 1e10, 1e15, 1e16, 1e21, 1e22, 1e23, 5e-324, 1e-323,
         2.2250738585072014e-308, 2.225073858507201e-308, 1.7976931348623157e308,
         9007199254740993.0, 2.0 ** 60, 2.0 ** -1074, 2.0 ** 1023, 9.999999999999999e20,
         0.000001234567890123456, -1234567890.1234567, np.inf, -np.inf]


def _arrow(values: np.ndarray) -> list[str]:
    return pc.cast(pa.array(values), pa.string()).to_pylist()


def test_edges_as_arrow_writes_them() -> None:
    values = np.array(EDGES)
    assert [format_float(v) for v in values] == _arrow(values)


def test_random_doubles_as_arrow_and_round_trip() -> None:
    rng = np.random.default_rng(11)
    bits = rng.integers(0, 2 ** 63, size=60_000, dtype=np.int64)
    signed = np.where(rng.random(bits.shape[0]) < 0.5, bits, bits | np.int64(-2 ** 63))
    values = np.concatenate([
        signed.view(np.float64),  # every exponent, subnormals included
        rng.standard_normal(20_000),
        rng.uniform(size=20_000) ** 12,  # p-values
        np.round(rng.standard_normal(5_000) * 1000, 3),  # short decimals: exact-case paths
        rng.integers(-10 ** 6, 10 ** 6, 5_000) * 10.0 ** rng.integers(-25, 25, 5_000),
        2.0 ** np.arange(-1074, 1024),  # powers of two: the asymmetric interval
    ])
    values = values[np.isfinite(values)]
    ours = [format_float(v) for v in values]
    assert ours == _arrow(values)
    assert all(float(text) == v for text, v in zip(ours, values, strict=True))
    assert max(map(len, ours)) <= MAX_FLOAT_CHARS
    # the digits are repr's (shortest, closest): compare mantissas without layout
    digits = [t.lstrip("-").split("e")[0].replace(".", "").strip("0") for t in ours[:2000]]
    expected = [repr(float(v)).lstrip("-").split("e")[0].replace(".", "").strip("0")
                for v in values[:2000]]
    assert digits == expected


@pytest.mark.parametrize("value", [0, 7, -7, 10, 99, 100, 2 ** 63 - 1, -2 ** 63, -10 ** 18])
def test_integers(value: int) -> None:
    out = np.empty(MAX_INT_CHARS, dtype=np.uint8)
    end = write_int(out, 0, value)
    assert out[:end].tobytes().decode() == str(value)


def test_only_contiguous_writable_buffers() -> None:
    """The digits are stored eight bytes at a time through the buffer's address: a strided
    or read-only buffer does not compile (it would get the wrong bytes)."""
    import numba

    bits = int(np.array(0.123456789).view(np.int64))
    out = np.zeros(2 * MAX_FLOAT_CHARS, dtype=np.uint8)
    with pytest.raises(numba.core.errors.TypingError):
        write_float(out[::2], 0, bits)
    out.flags.writeable = False
    with pytest.raises(numba.core.errors.TypingError):
        write_float(out, 0, bits)
