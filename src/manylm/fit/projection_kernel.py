"""The dense fit's one read of the data: every row's products with a small basis, and |y|^2.

For a block of rows Y (features x samples) and a basis B (samples x w, w a multiple of 8) the
dense solver needs Y B and the row sums of squares. BLAS runs that skinny product at a fraction
of the machine's speed (it packs Y for a product whose other side is tiny); this compiled loop
reads each row once, keeps two rows' 16 running sums in registers, vectorises along the samples
and adds |y|^2 on the way, so it runs at about the memory bandwidth (450,000 x 100: ~25 ms on 2
cores, against ~65 ms for the BLAS product plus a separate |y|^2 pass).

Sums are accumulated in float64 whatever the input type (float32 rows are read as they are).
The order of the additions is left to the compiler (as BLAS leaves it), which changes results
only by rounding.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

from manylm.parallel import parallel_slices

__all__ = ["BASIS_GROUP", "project_rows"]

#: The kernel computes its outputs eight at a time: bases are padded with zero columns to this.
BASIS_GROUP = 8

# Re-association (so the sums vectorise) and fused multiply-add only: NaN and Inf still
# propagate, which the dense solver relies on to find rows with a missing value.
_FAST = {"reassoc", "contract", "nsz"}


def project_rows(y: NDArray[np.floating], basis_t: NDArray[np.float64],
                 product: NDArray[np.floating], total: NDArray[np.floating], *,
                 parallel: bool = False) -> None:
    """``product[i] = basis_t @ y[i]`` and ``total[i] = y[i] @ y[i]`` for every row ``i``.

    ``basis_t`` is the transposed basis, (w, n_samples) with w a multiple of
    :data:`BASIS_GROUP`, C-contiguous; ``y`` must have unit stride along samples. With
    ``parallel`` the rows are split over the cores.
    """
    if basis_t.shape[0] % BASIS_GROUP or not basis_t.flags.c_contiguous:
        raise ValueError("basis_t must be C-contiguous with a multiple of 8 rows")
    if y.shape[0] == 0:
        return
    if y.strides[1] != y.itemsize:
        y = np.ascontiguousarray(y)
    if parallel:
        parallel_slices(lambda part: _project(y, basis_t, product, total, part.start,
                                              part.stop), y.shape[0], min_items=2048)
    else:
        _project(y, basis_t, product, total, 0, y.shape[0])


@numba.njit(cache=True, nogil=True, fastmath=_FAST, boundscheck=False)
def _project(y, basis_t, product, total, start, stop):
    n = y.shape[1]
    i = start
    while i < stop:
        pair = i + 1 < stop
        j = i + 1 if pair else i  # an odd last row is computed twice, stored once
        for group in range(basis_t.shape[0] // 8):
            o = 8 * group
            a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = aa = 0.0
            b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = bb = 0.0
            for k in range(n):
                u = np.float64(y[i, k])
                v = np.float64(y[j, k])
                q0 = basis_t[o, k]
                q1 = basis_t[o + 1, k]
                q2 = basis_t[o + 2, k]
                q3 = basis_t[o + 3, k]
                q4 = basis_t[o + 4, k]
                q5 = basis_t[o + 5, k]
                q6 = basis_t[o + 6, k]
                q7 = basis_t[o + 7, k]
                a0 += u * q0
                a1 += u * q1
                a2 += u * q2
                a3 += u * q3
                a4 += u * q4
                a5 += u * q5
                a6 += u * q6
                a7 += u * q7
                b0 += v * q0
                b1 += v * q1
                b2 += v * q2
                b3 += v * q3
                b4 += v * q4
                b5 += v * q5
                b6 += v * q6
                b7 += v * q7
                aa += u * u
                bb += v * v
            product[i, o] = a0
            product[i, o + 1] = a1
            product[i, o + 2] = a2
            product[i, o + 3] = a3
            product[i, o + 4] = a4
            product[i, o + 5] = a5
            product[i, o + 6] = a6
            product[i, o + 7] = a7
            if pair:
                product[j, o] = b0
                product[j, o + 1] = b1
                product[j, o + 2] = b2
                product[j, o + 3] = b3
                product[j, o + 4] = b4
                product[j, o + 5] = b5
                product[j, o + 6] = b6
                product[j, o + 7] = b7
            if group == 0:
                total[i] = aa
                total[j] = bb
        i += 2
