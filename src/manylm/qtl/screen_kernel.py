"""The |z| screen of a tile of products, in one compiled pass.

Almost every entry of a tile of products fails the threshold: at p = 1e-5 about one pair in
10^5 passes. Screening the tile with NumPy (``abs``, a comparison, ``flatnonzero``, ``divmod``)
reads and writes it several times and builds a boolean tile as large as the products. The
kernel here reads each product once (twice in the rare rows with a passing entry), in the
product dtype (no float64 up-cast of a float32 tile), and writes only the positions of the
passing entries, right after the product that made the tile (still in the cache), so the screen
costs a few percent of that product.

Each row is first reduced to "does any entry pass" by a loop without branches, which the
compiler turns into SIMD code (about 7e9 float32 entries a second on one core); only the rare
row with a passing entry is read again, entry by entry, to record the positions. (Runs shorter
than a row, or a running maximum, were measured 2-7 times slower: they keep the loop from
vectorising.) A NaN product never passes (every comparison with NaN is false), as with the
NumPy screen.

The kernel releases the GIL, so the worker threads of a scan screen their tiles in parallel.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

__all__ = ["magnitude_bounds", "screen_magnitude"]


def magnitude_bounds(fraction: NDArray[np.float64], margin: float, dtype: np.dtype
                     ) -> NDArray[np.floating]:
    """Per-row bounds on ``|z|`` equivalent to ``z^2 >= fraction - margin``, in ``dtype``.

    The square root is taken in float64 and, in float32, rounded down to the next float32 so
    that the screen never drops a pair the float64 comparison would keep.
    """
    bound = np.sqrt(np.maximum(np.asarray(fraction, dtype=np.float64) - margin, 0.0))
    return _round_down(bound, dtype)


def _round_down(bound: NDArray[np.floating], dtype: np.dtype) -> NDArray[np.floating]:
    """``bound`` (>= 0) in ``dtype``, never above its value (a looser screen, not a tighter)."""
    narrowed = bound.astype(dtype)
    too_high = narrowed.astype(np.float64) > bound.astype(np.float64)
    if too_high.any():
        narrowed[too_high] = np.nextafter(narrowed[too_high], np.asarray(0, dtype=dtype))
    return narrowed


def screen_magnitude(products: NDArray[np.floating], bounds: NDArray[np.floating],
                     rows: NDArray[np.intp], columns: NDArray[np.intp]) -> int:
    """Record the entries of ``products`` with ``|products[i, j]| >= bounds[i]``.

    Parameters
    ----------
    products : C-contiguous array of float32 or float64, shape (n_rows, width)
    bounds : array of shape (n_rows,), >= 0
        Compared in the dtype of ``products``: rounded down to it when they are wider.
    rows, columns : arrays of intp, same length (the capacity)
        Filled, in row-major order, with the positions of the passing entries.

    Returns
    -------
    int
        The number of passing entries. When it exceeds the capacity only the first
        ``capacity`` positions were recorded: call again with arrays at least that long.
    """
    if bounds.dtype != products.dtype:
        bounds = _round_down(bounds, products.dtype)
    return int(_screen(np.ascontiguousarray(products), np.ascontiguousarray(bounds), rows,
                       columns))


@numba.njit(cache=True, nogil=True)
def _screen(products, bounds, rows, columns):  # pragma: no cover - compiled
    n_rows, width = products.shape
    capacity = rows.shape[0]
    count = 0
    for i in range(n_rows):
        bound = bounds[i]
        row = products[i]
        passing = 0
        for j in range(width):  # vectorised: no branch, no early exit
            passing += abs(row[j]) >= bound
        if passing == 0:
            continue
        for j in range(width):
            if abs(row[j]) >= bound:
                if count < capacity:
                    rows[count] = i
                    columns[count] = j
                count += 1
    return count
