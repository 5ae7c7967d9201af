"""Numbers as text in compiled code: the shortest float64 text that reads back the same value.

Results tables are mostly distinct doubles (10^7 features x 8 columns is 8 x 10^7 values), and
turning them into text was the most expensive step of writing a TSV table: Arrow's cast takes
about 100 ns a value, single-threaded per call. Here the digits come from Ryū (Adams 2018,
"Ryū: fast float-to-string conversion", PLDI; the d2s algorithm of section 3): the shortest
decimal in the interval of reals that round to the double, the closest to it when several are
as short, ties to even, found with three 64 x 128-bit multiplications by tabulated powers of
five. Those are the digits of Python's ``repr`` and of Arrow's cast (both shortest round-trip,
closest); the layout is Arrow's (what manylm's tables have always had):

- a scientific exponent ``k`` of -7 < k < 10: positional (``0.000001``, ``1500000000``);
- otherwise ``d.ddde+k`` / ``d.ddde-k`` (``1e-7``, ``1.5e+10``), no padding of the exponent;
- no trailing ``.0`` (``1``, ``-0``), ``inf`` and ``-inf``.

:func:`write_float` and :func:`write_int` write into a byte array and are meant for compiled
callers (:mod:`manylm.io.delimited_rows`, which also finds many values' digits first with
:func:`shortest_decimal` and writes them with :func:`write_decimal`); :func:`format_float` is
the same from Python, for tests and small uses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic
from numpy.typing import NDArray

from manylm.io.byte_words import bit_length, store_word

__all__ = ["MAX_FLOAT_CHARS", "MAX_INT_CHARS", "format_float", "shortest_decimal", "write_decimal",
           "write_float", "write_int"]

#: The longest text :func:`write_float` writes: ``-0.0000012345678901234567`` (25 bytes).
MAX_FLOAT_CHARS = 25
#: The longest text :func:`write_int` writes: ``-9223372036854775808`` (20 bytes).
MAX_INT_CHARS = 20

_MANTISSA_BITS = 52
_EXPONENT_BIAS = 1023
# Bits kept of 5^i (and of 2^j / 5^i) in the tables (the paper's B0 and B1 for double).
_POW5_BITS = 125
_POW5_INV_BITS = 125
_MASK64 = (1 << 64) - 1


def _power_tables() -> tuple[NDArray[np.uint64], NDArray[np.uint64]]:
    """5^i to 125 significant bits (i < 326) and ceil-ish 2^j / 5^q (q < 342), as 128-bit
    numbers in (low, high) 64-bit words: the multipliers of the paper's section 3.4 for every
    binary exponent of a double (from exact integer arithmetic, at import)."""
    pow5 = np.empty((326, 2), dtype=np.uint64)
    for i in range(326):
        power = 5 ** i
        bits = power.bit_length()
        top = power >> (bits - _POW5_BITS) if bits >= _POW5_BITS else power << (_POW5_BITS - bits)
        pow5[i] = (top & _MASK64, top >> 64)
    pow5_inverse = np.empty((342, 2), dtype=np.uint64)
    for q in range(342):
        power = 5 ** q
        inverse = (1 << (power.bit_length() - 1 + _POW5_INV_BITS)) // power + 1
        pow5_inverse[q] = (inverse & _MASK64, inverse >> 64)
    return pow5, pow5_inverse


_POW5, _POW5_INVERSE = _power_tables()


@intrinsic
def _mul_shift_intrinsic(typingctx: Any, m: Any, low: Any, high: Any, shift: Any) -> Any:
    """``(m * (high * 2^64 + low)) >> (64 + shift)``, the low 64 bits; m < 2^56 (unsigned),
    0 < shift < 64. Two 64 x 64 -> 128-bit products (numba has no 128-bit integers)."""
    signature = types.int64(types.int64, types.uint64, types.uint64, types.int64)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        wide = ir.IntType(128)
        m_wide = builder.zext(args[0], wide)
        product_low = builder.mul(m_wide, builder.zext(args[1], wide))
        product_high = builder.mul(m_wide, builder.zext(args[2], wide))
        total = builder.add(builder.lshr(product_low, ir.Constant(wide, 64)), product_high)
        shifted = builder.lshr(total, builder.zext(args[3], wide))
        return builder.trunc(shifted, ir.IntType(64))

    return signature, codegen


_mul_shift = cast(Callable[[int, Any, Any, int], int], _mul_shift_intrinsic)


@numba.njit(inline="always")
def _pow5_bits(e: int) -> int:
    """Bits of 5^e (1 for e = 0), for 0 <= e <= 3528."""
    return ((e * 1217359) >> 19) + 1


@numba.njit(inline="always")
def _log10_pow2(e: int) -> int:
    """floor(log10(2^e)) for 0 <= e <= 1650."""
    return (e * 78913) >> 18


@numba.njit(inline="always")
def _log10_pow5(e: int) -> int:
    """floor(log10(5^e)) for 0 <= e <= 2620."""
    return (e * 732923) >> 20


@numba.njit(inline="always")
def _multiple_of_pow5(value: int, p: int) -> bool:
    count = 0
    while value > 0 and value % 5 == 0:
        value //= 5
        count += 1
    return count >= p


_POWERS_OF_TEN = np.array([10 ** i for i in range(19)], dtype=np.int64)
_UNSIGNED_POWERS_OF_TEN = _POWERS_OF_TEN.astype(np.uint64)
#: Most significant digits of a double's shortest decimal.
_MAX_DIGITS = 17


@numba.njit(inline="always")
def _decimal_length(v: int) -> int:
    """Digits of 0 <= v < 10^19 (1 for 0); the common lengths (16 and 17) first."""
    powers = _POWERS_OF_TEN
    length = 19
    while length > 1 and v < powers[length - 1]:
        length -= 1
    return length


@numba.njit(inline="always")
def _drop_digit(ur: Any, up: Any, um: Any, last_removed: Any,
                vr_trailing_zeros: bool) -> tuple[Any, Any, Any, Any, bool]:
    """Remove the last digit of the three bounds (the exact-case loop of Ryū's d2d): whether
    every digit removed from vr so far was zero, and the one removed now."""
    ten = np.uint64(10)
    vr_trailing_zeros = vr_trailing_zeros and last_removed == 0
    return ur // ten, up // ten, um // ten, ur % ten, vr_trailing_zeros


@numba.njit(nogil=True, cache=True)
def shortest_decimal(mantissa_bits: int, exponent_bits: int) -> tuple[int, int]:
    """The shortest decimal ``digits x 10^exponent`` that reads back as the finite, nonzero
    double with these IEEE fields (closest when several are as short, ties to even): Ryū's d2d.
    """
    pow5 = _POW5
    pow5_inverse = _POW5_INVERSE
    if exponent_bits == 0:
        e2 = 1 - _EXPONENT_BIAS - _MANTISSA_BITS - 2
        m2 = mantissa_bits
    else:
        e2 = exponent_bits - _EXPONENT_BIAS - _MANTISSA_BITS - 2
        m2 = (1 << _MANTISSA_BITS) | mantissa_bits
    accept_bounds = (m2 & 1) == 0
    mv = 4 * m2
    # the lower neighbour is closer when the mantissa is a power of two (except the smallest)
    mm_shift = 1 if (mantissa_bits != 0 or exponent_bits <= 1) else 0
    vm_trailing_zeros = False
    vr_trailing_zeros = False
    lowered = False  # vp one less: its interval end is exactly representable and excluded
    if e2 >= 0:
        q = _log10_pow2(e2) - (1 if e2 > 3 else 0)
        e10 = q
        k = _POW5_INV_BITS + _pow5_bits(q) - 1
        shift = -e2 + q + k - 64
        low = pow5_inverse[q, 0]
        high = pow5_inverse[q, 1]
        if q <= 21:
            if mv % 5 == 0:
                vr_trailing_zeros = _multiple_of_pow5(mv, q)
            elif accept_bounds:
                vm_trailing_zeros = _multiple_of_pow5(mv - 1 - mm_shift, q)
            else:
                lowered = _multiple_of_pow5(mv + 2, q)
    else:
        q = _log10_pow5(-e2) - (1 if -e2 > 1 else 0)
        e10 = q + e2
        i = -e2 - q
        k = _pow5_bits(i) - _POW5_BITS
        shift = q - k - 64
        low = pow5[i, 0]
        high = pow5[i, 1]
        if q <= 1:
            # mv has at least q trailing zero bits, so vr has at least q trailing zero digits
            vr_trailing_zeros = True
            if accept_bounds:
                vm_trailing_zeros = mm_shift == 1
            else:
                lowered = True
        elif q < 63:
            vr_trailing_zeros = (mv & ((1 << q) - 1)) == 0
    vr = _mul_shift(mv, low, high, shift)
    vp = _mul_shift(mv + 2, low, high, shift) - (1 if lowered else 0)
    vm = _mul_shift(mv - 1 - mm_shift, low, high, shift)
    # the digit removal below in unsigned arithmetic (a division by a constant is then a
    # multiplication; the values are below 2^63)
    ten = np.uint64(10)
    hundred = np.uint64(100)
    ur = np.uint64(vr)
    up = np.uint64(vp)
    um = np.uint64(vm)
    removed = 0
    last_removed = np.uint64(0)
    if vm_trailing_zeros or vr_trailing_zeros:
        # the rare exact cases: track whether the removed digits were all zero
        while up // ten > um // ten:
            vm_trailing_zeros = vm_trailing_zeros and um % ten == 0
            ur, up, um, last_removed, vr_trailing_zeros = _drop_digit(
                ur, up, um, last_removed, vr_trailing_zeros)
            removed += 1
        while vm_trailing_zeros and um % ten == 0:
            ur, up, um, last_removed, vr_trailing_zeros = _drop_digit(
                ur, up, um, last_removed, vr_trailing_zeros)
            removed += 1
        if vr_trailing_zeros and last_removed == 5 and ur % np.uint64(2) == 0:
            last_removed = np.uint64(4)  # exactly halfway: round to even
        round_up = bool((ur == um and (not accept_bounds or not vm_trailing_zeros))
                        or last_removed >= np.uint64(5))
    else:
        round_up = False
        if up // hundred > um // hundred:
            round_up = bool(ur % hundred >= np.uint64(50))
            ur //= hundred
            up //= hundred
            um //= hundred
            removed += 2
        while up // ten > um // ten:
            round_up = bool(ur % ten >= np.uint64(5))
            ur //= ten
            up //= ten
            um //= ten
            removed += 1
        round_up = round_up or bool(ur == um)
    return int(ur) + (1 if round_up else 0), e10 + removed


_DIGIT_PAIRS = np.frombuffer("".join(f"{i:02d}" for i in range(100)).encode("ascii"),
                             dtype=np.uint8).copy()


@numba.njit(inline="always")
def _write_digits(out: NDArray[np.uint8], end: int, v: int) -> None:
    """Write the decimal digits of v >= 0 so that the last is at ``out[end - 1]``: two at a
    time, in unsigned arithmetic (a division by a constant is then a multiplication)."""
    pairs = _DIGIT_PAIRS
    u = np.uint64(v)
    hundred = np.uint64(100)
    position = end
    while u >= hundred:
        pair = np.int64(u % hundred) * 2
        u = u // hundred
        position -= 2
        out[position] = pairs[pair]
        out[position + 1] = pairs[pair + 1]
    if u >= np.uint64(10):
        pair = np.int64(u) * 2
        out[position - 2] = pairs[pair]
        out[position - 1] = pairs[pair + 1]
    else:
        out[position - 1] = 48 + np.int64(u)


@numba.njit(nogil=True, cache=True)
def write_int(out: NDArray[np.uint8], position: int, value: int) -> int:
    """Write an int64 in decimal at ``out[position:]``; the position after it."""
    if value < 0:
        out[position] = 45  # '-'
        position += 1
        if value == -9223372036854775807 - 1:
            digits = "9223372036854775808"
            for j in range(19):
                out[position + j] = ord(digits[j])
            return position + 19
        value = -value
    length = _decimal_length(value)
    _write_digits(out, position + length, value)
    return position + length


@numba.njit(inline="always")
def _digit_count(v: int) -> int:
    """Digits of 0 < v < 2^63: from the bit length (log10(2) ~ 1233 / 4096) and one
    comparison, without branches."""
    estimate = (bit_length(np.uint64(v)) * 1233) >> 12
    return estimate + (1 if np.uint64(v) >= _UNSIGNED_POWERS_OF_TEN[estimate] else 0)


@numba.njit(inline="always")
def _ascii_digits8(n: Any) -> Any:
    """The 8 decimal digits of 0 <= n < 10^8 (leading zeros kept) as ASCII in one word, the
    first digit in the lowest byte: the halves, quarters and digits split in parallel lanes
    (a division by 100 of a number below 10^4 is (x * 10486) >> 20, by 10 of one below 100
    is (x * 103) >> 10)."""
    n = np.uint64(n)
    high = n // np.uint64(10_000)
    lanes = high | ((n - high * np.uint64(10_000)) << np.uint64(32))
    hundreds = ((lanes * np.uint64(10486)) >> np.uint64(20)) & np.uint64(0x0000007F0000007F)
    lanes = hundreds | ((lanes - hundreds * np.uint64(100)) << np.uint64(16))
    tens = ((lanes * np.uint64(103)) >> np.uint64(10)) & np.uint64(0x000F000F000F000F)
    lanes = tens | ((lanes - tens * np.uint64(10)) << np.uint64(8))
    return lanes | np.uint64(0x3030303030303030)


@numba.njit(inline="always")
def _write_digits17(out: NDArray[np.uint8], position: int, v: Any) -> None:
    """Write the 17 digits of 0 <= v < 10^17 (leading zeros kept) at ``out[position:]``."""
    top = v // np.uint64(10 ** 16)
    rest = v - top * np.uint64(10 ** 16)
    middle = rest // np.uint64(10 ** 8)
    out[position] = 48 + np.int64(top)
    store_word(out, position + 1, _ascii_digits8(middle))
    store_word(out, position + 9, _ascii_digits8(rest - middle * np.uint64(10 ** 8)))


@numba.njit(nogil=True, cache=True)
def write_float(out: NDArray[np.uint8], position: int, bits: int) -> int:
    """Write a finite or infinite double, given by its bits (an int64 view of the float64),
    as its shortest round-trip text (the module's layout) at ``out[position:]``; the position
    after it. The text is at most :data:`MAX_FLOAT_CHARS` bytes, and so is the space used:
    the bytes after the returned position, up to that many, may be overwritten. NaN is the
    caller's to write (as ``NA`` in a table).

    The digits are written as 17 (the shortest decimal's, then zeros), eight at a time, in
    place: an integer's trailing zeros are among them, and the other layouts move at most
    the whole part (positional) or the first digit (scientific) one place for the point.
    """
    if bits < 0:
        out[position] = 45  # '-'
        position += 1
    exponent_bits = (bits >> _MANTISSA_BITS) & 0x7FF
    mantissa_bits = bits & ((1 << _MANTISSA_BITS) - 1)
    if exponent_bits == 0x7FF:  # infinity (NaN is not written here)
        out[position] = 105  # 'i'
        out[position + 1] = 110  # 'n'
        out[position + 2] = 102  # 'f'
        return position + 3
    if exponent_bits == 0 and mantissa_bits == 0:
        out[position] = 48
        return position + 1
    digits, exponent = shortest_decimal(mantissa_bits, exponent_bits)
    return write_decimal(out, position, digits, exponent)


@numba.njit(inline="always")
def write_decimal(out: NDArray[np.uint8], position: int, digits: int, exponent: int) -> int:
    """Write ``digits x 10^exponent`` (0 < digits < 10^17, the sign already written) in the
    module's layout at ``out[position:]``; the position after it (see :func:`write_float`)."""
    length = _digit_count(digits)
    padded = np.uint64(digits) * _UNSIGNED_POWERS_OF_TEN[_MAX_DIGITS - length]
    k = exponent + length - 1  # scientific exponent: value = d.ddd x 10^k
    if -7 < k < 10:
        if k < 0:  # 0.00ddd: "0." and up to 5 zeros (8 written), then the digits
            store_word(out, position, np.uint64(0x3030303030302E30))
            end = position + 1 - k
            _write_digits17(out, end, padded)
            return end + length
        whole = k + 1
        if exponent >= 0:  # an integer: its digits, then zeros (written with them)
            _write_digits17(out, position, padded)
            return position + whole
        _write_digits17(out, position + 1, padded)  # d..d.d..d: the whole part moves left
        for j in range(whole):
            out[position + j] = out[position + j + 1]
        out[position + whole] = 46  # '.'
        return position + length + 1
    # d.ddde+k
    _write_digits17(out, position + 1, padded)
    out[position] = out[position + 1]
    if length > 1:
        out[position + 1] = 46  # '.'
        position += length + 1
    else:
        position += 1
    out[position] = 101  # 'e'
    out[position + 1] = 43 if k >= 0 else 45
    k_abs = k if k >= 0 else -k
    pairs = _DIGIT_PAIRS
    if k_abs >= 100:  # |k| <= 324
        out[position + 2] = 48 + k_abs // 100
        out[position + 3] = pairs[2 * (k_abs % 100)]
        out[position + 4] = pairs[2 * (k_abs % 100) + 1]
        return position + 5
    if k_abs >= 10:
        out[position + 2] = pairs[2 * k_abs]
        out[position + 3] = pairs[2 * k_abs + 1]
        return position + 4
    out[position + 2] = 48 + k_abs
    return position + 3


def format_float(value: float) -> str:
    """The text :func:`write_float` gives for one double (``"nan"`` for NaN)."""
    if value != value:
        return "nan"
    out = np.empty(MAX_FLOAT_CHARS, dtype=np.uint8)
    end = write_float(out, 0, int(np.array(value, dtype=np.float64).view(np.int64)))
    return out[:end].tobytes().decode("ascii")
