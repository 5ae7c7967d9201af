"""All (variant, phenotype) pairs of a block, screened tile by tile against the threshold.

A block of genotype directions times a tile of standardised phenotypes is one BLAS product
(``(n_columns * n_variants) x n_samples`` by ``n_samples x tile``). The tile is then screened:
a pair passes when ``explained >= fraction * available`` (:mod:`manylm.qtl.thresholds`), and
only passing pairs leave the tile. Tiles run on worker threads, each with single-threaded BLAS.

In float32 the product only screens: the threshold is relaxed by a bound on the float32
rounding error of a unit-vector dot product (``4 (n + 2) eps``), and each candidate is
recomputed in float64, so the pairs and statistics are those of a float64 scan. Variants with
exactly handled missing calls are always done in float64, with their per-pair complete-case
correction (:meth:`MissingSamples.phenotype_correction`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from manylm.parallel import parallel_map
from manylm.qtl.genotype_terms import TESTED, BlockTerms
from manylm.qtl.missing_genotypes import MissingSamples
from manylm.qtl.pair_statistics import explained_and_available
from manylm.qtl.screen_kernel import magnitude_bounds, screen_magnitude

__all__ = ["PairHits", "PhenotypeOperands", "screening_margin", "trans_hits"]

#: Phenotypes per tile.
TILE_COLUMNS = 1024
#: Bytes of products made (and then screened) at a time: a whole block of 1024 variants by
#: 1024 phenotypes in float64 (up to 2048 variants in float32). Tall products keep BLAS fast:
#: it repacks the phenotype panel on every call, and with 128-variant steps of 2048 phenotypes
#: that cost a quarter of the float32 product time. The screen, one compiled pass, stays cheap
#: even though such a step no longer fits in L2 (measured: 1024 x 1024 float32 steps ran at
#: 1.75e8 tests/s against 1.31e8 for 128 x 2048, screen included).
_STEP_BYTES = 8 << 20
#: Passing pairs a step makes room for at first (more: the step is screened again).
_HIT_CAPACITY = 4096
#: Bytes of gathered phenotype values per chunk of the complete-case correction.
_CORRECTION_BYTES = 32 << 20


@dataclass(frozen=True)
class PhenotypeOperands:
    """The standardised phenotypes in the layouts the products need.

    Attributes
    ----------
    values : array of float64, shape (n_phenotypes, n_samples)
    product_values : array of shape (n_phenotypes, n_samples)
        ``values`` in the dtype of the products (the same array in float64).
    residual_norm : array of float64, shape (n_phenotypes,)
    by_sample : array of float64, shape (n_samples, n_phenotypes)
        ``values.T``, C-contiguous (rows gathered by the complete-case correction); made on
        first use, since only variants with exactly handled missing calls need it and the
        transposed copy of every phenotype costs about a tenth of a second before the scan can
        start.
    """

    values: NDArray[np.float64]
    product_values: NDArray[np.floating]
    residual_norm: NDArray[np.float64]

    @classmethod
    def build(cls, values: NDArray[np.float64], residual_norm: NDArray[np.float64],
              dtype: np.dtype) -> PhenotypeOperands:
        product = values if dtype == np.float64 else values.astype(dtype)
        return cls(values, product, residual_norm)

    @cached_property
    def by_sample(self) -> NDArray[np.float64]:
        return np.ascontiguousarray(self.values.T)

    @property
    def n_phenotypes(self) -> int:
        return int(self.values.shape[0])


@dataclass
class PairHits:
    """Pairs that passed, with their products and complete-case shares.

    Attributes
    ----------
    rows : array of intp, shape (n_hits,)
        Variant positions in the block.
    columns : array of intp, shape (n_hits,)
        Phenotype positions.
    z : array of float64, shape (n_columns, n_hits)
    share : array of float64, shape (n_hits,)
    """

    rows: NDArray[np.intp]
    columns: NDArray[np.intp]
    z: NDArray[np.float64]
    share: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def empty(cls, n_columns: int) -> PairHits:
        return cls(np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros((n_columns, 0)),
                   np.zeros(0))

    @classmethod
    def concatenate(cls, parts: list[PairHits], n_columns: int) -> PairHits:
        parts = [p for p in parts if len(p.rows)]
        if not parts:
            return cls.empty(n_columns)
        return cls(np.concatenate([p.rows for p in parts]),
                   np.concatenate([p.columns for p in parts]),
                   np.concatenate([p.z for p in parts], axis=1),
                   np.concatenate([p.share for p in parts]))


def screening_margin(dtype: np.dtype, n_samples: int) -> float:
    """Absolute slack on ``explained - fraction * available`` for products in ``dtype``."""
    return 4.0 * (n_samples + 2) * float(np.finfo(dtype).eps)


def trans_hits(terms: BlockTerms, phenotypes: PhenotypeOperands, model: str,
               fraction: NDArray[np.float64], *, n_threads: int = 1,
               tile_columns: int = TILE_COLUMNS) -> PairHits:
    """Every pair of the block whose test passes the threshold.

    Parameters
    ----------
    terms : BlockTerms
        The block's genotype directions.
    phenotypes : PhenotypeOperands
    model : {"linear", "anova", "interaction"}
    fraction : array of float64, shape (n_variants,)
        Threshold on ``explained / available`` of each variant.
    n_threads : int
        Worker threads for the tiles.
    tile_columns : int
        Phenotypes per tile.

    Returns
    -------
    PairHits
        Candidates: a pair just below the threshold may be included (the caller keeps the
        pairs whose exact p-value passes).
    """
    n_columns = terms.directions.shape[0]
    tested = terms.status == TESTED
    exact_mask = np.zeros(len(tested), dtype=bool)
    exact_mask[terms.exact_rows] = True
    dense_rows = np.flatnonzero(tested & ~exact_mask)
    exact_tested = np.flatnonzero(tested[terms.exact_rows])
    n_phenotypes = phenotypes.n_phenotypes
    tiles = [(start, min(n_phenotypes, start + tile_columns))
             for start in range(0, n_phenotypes, tile_columns)]
    tasks: list[Callable[[], PairHits]] = []
    if len(dense_rows):
        dtype = phenotypes.product_values.dtype
        # variant-major: the columns of one variant are adjacent rows, so any run of variants
        # is a contiguous slice
        interleaved = np.ascontiguousarray(
            terms.directions[:, dense_rows].transpose(1, 0, 2), dtype=dtype).reshape(
                len(dense_rows) * n_columns, -1)
        margin = screening_margin(dtype, terms.directions.shape[2])
        # few phenotypes (one tile): split the variants instead, so every thread has work
        n_parts = max(1, min(n_threads // len(tiles), len(dense_rows) // 64))
        for part in np.array_split(np.arange(len(dense_rows)), n_parts):
            rows = dense_rows[part]
            block = interleaved[part[0] * n_columns:(part[-1] + 1) * n_columns]
            for start, stop in tiles:
                tasks.append(_bind(_dense_tile, block, rows, terms, phenotypes, model,
                                   fraction[rows], margin, start, stop))
    if len(exact_tested):
        assert terms.missing is not None
        structure = terms.missing.subset(exact_tested)
        exact_rows = terms.exact_rows[exact_tested]
        width = structure.index.shape[1]
        for start, stop in tiles:
            chunk = max(1, _CORRECTION_BYTES // (8 * width * (stop - start)))
            for first in range(0, len(exact_rows), chunk):
                positions = np.arange(first, min(len(exact_rows), first + chunk))
                tasks.append(_bind(_exact_tile, exact_rows[positions],
                                   structure.subset(positions), terms, phenotypes, model,
                                   fraction[exact_rows[positions]], start, stop))
    if not tasks:
        return PairHits.empty(n_columns)
    parts = parallel_map(lambda task: task(), tasks, n_jobs=n_threads)
    hits = PairHits.concatenate(parts, n_columns)
    # by variant, then phenotype: the order of the output does not depend on the tiling, the
    # threads or the dtype
    order = np.lexsort((hits.columns, hits.rows))
    return PairHits(hits.rows[order], hits.columns[order], hits.z[:, order], hits.share[order])


def _bind(function: Callable[..., PairHits], *args: object) -> Callable[[], PairHits]:
    return lambda: function(*args)


def _dense_tile(interleaved: NDArray[np.floating], rows: NDArray[np.intp], terms: BlockTerms,
                phenotypes: PhenotypeOperands, model: str, fraction: NDArray[np.float64],
                margin: float, start: int, stop: int) -> PairHits:
    """Screen ``rows`` x phenotypes ``start:stop``, up to :data:`_STEP_BYTES` of products at a time.

    In the linear model the screen is one compiled pass over the step's products
    (:func:`~manylm.qtl.screen_kernel.screen_magnitude`) that returns only the passing
    positions, in the product dtype; the other models compare explained and available variance
    with NumPy.
    """
    n_columns = terms.directions.shape[0]
    targets = phenotypes.product_values[start:stop].T
    width = stop - start
    step = max(8, _STEP_BYTES // (interleaved.itemsize * width * n_columns))
    buffer = np.empty((min(step, len(rows)) * n_columns, width), dtype=interleaved.dtype)
    linear = model == "linear"
    if linear:  # one product per pair (n_columns == 1)
        bounds = magnitude_bounds(fraction, margin, buffer.dtype)
        found_rows = np.empty(_HIT_CAPACITY, dtype=np.intp)
        found_columns = np.empty(_HIT_CAPACITY, dtype=np.intp)
    parts: list[PairHits] = []
    for first in range(0, len(rows), step):
        last = min(len(rows), first + step)
        products = buffer[:(last - first) * n_columns]
        np.matmul(interleaved[first * n_columns:last * n_columns], targets, out=products)
        z = [products[a::n_columns] for a in range(n_columns)]
        if linear:
            count = screen_magnitude(products, bounds[first:last], found_rows, found_columns)
            if count > len(found_rows):  # more passing pairs than room: again, with room
                found_rows = np.empty(count, dtype=np.intp)
                found_columns = np.empty(count, dtype=np.intp)
                screen_magnitude(products, bounds[first:last], found_rows, found_columns)
            if not count:
                continue
            hit_rows, hit_columns = found_rows[:count], found_columns[:count]
        else:
            explained, available = explained_and_available(model, np.stack(z))
            mask = explained >= fraction[first:last, None] * available - margin
            # 1-D search then divmod: much faster than a 2-D np.nonzero, same order
            flat = np.flatnonzero(mask)
            if not flat.size:
                continue
            hit_rows, hit_columns = np.divmod(flat, mask.shape[1])
        variant_rows = rows[first + hit_rows]
        phenotype_columns = hit_columns + start
        if products.dtype == np.float64:
            values = np.stack([part[hit_rows, hit_columns] for part in z]).astype(np.float64)
        else:  # recompute the candidates exactly
            values = np.einsum("ahn,hn->ah", terms.directions[:, variant_rows],
                               phenotypes.values[phenotype_columns])
        parts.append(PairHits(variant_rows, phenotype_columns, values,
                              np.ones(len(variant_rows))))
    return PairHits.concatenate(parts, n_columns)


def _exact_tile(rows: NDArray[np.intp], structure: MissingSamples, terms: BlockTerms,
                phenotypes: PhenotypeOperands, model: str, fraction: NDArray[np.float64],
                start: int, stop: int) -> PairHits:
    directions = terms.directions[:, rows]
    z = np.matmul(directions, phenotypes.values[start:stop].T)  # (a, r, tile)
    share = 1.0 - structure.phenotype_correction(phenotypes.by_sample[:, start:stop])
    explained, available = explained_and_available(model, z, share)
    margin = screening_margin(np.dtype(np.float64), terms.directions.shape[2])
    mask = explained >= fraction[:, None] * available - margin
    hit_rows, hit_columns = np.nonzero(mask)
    return PairHits(rows[hit_rows], hit_columns + start, z[:, hit_rows, hit_columns],
                    share[hit_rows, hit_columns])
