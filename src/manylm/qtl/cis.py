"""cis pairs: a variant and a phenotype on the same chromosome, within a window of its start.

A pair is cis when ``|variant position - phenotype start| <= window`` on the same chromosome
(tensorQTL's cis window around the phenotype start; Matrix eQTL's ``cisDist`` with a gene of
zero length). Chromosome names are compared without a leading ``chr`` (``chr1`` and ``1`` are
the same). Phenotypes and variants without a position are never cis.

The variants of a block are sorted by position and cut into runs of at most
:data:`RUN_LENGTH` on one chromosome; each run is multiplied with the contiguous range of
phenotypes (sorted by chromosome and start) that any of its windows reaches, and the product is
masked to the cis pairs. Every product is float64.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from manylm.qtl.correlation_scan import PairHits, PhenotypeOperands, screening_margin
from manylm.qtl.genotype_terms import TESTED, BlockTerms
from manylm.qtl.pair_statistics import explained_and_available

__all__ = ["RUN_LENGTH", "ChromosomeCodes", "CisIndex", "cis_hits"]

RUN_LENGTH = 256
_SHIFT = np.int64(1) << np.int64(40)  # positions stay below 2^40 (1.1e12 bp)


class ChromosomeCodes:
    """Integer codes for chromosome names, shared by variants and phenotypes."""

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}

    def encode(self, names: Sequence[object] | NDArray[np.object_]) -> NDArray[np.int64]:
        """Codes of ``names`` (missing names get -1); one dictionary look-up per distinct name."""
        local, uniques = pd.factorize(pd.Series(np.asarray(names, dtype=object)))
        mapping = np.empty(len(uniques), dtype=np.int64)
        for i, name in enumerate(uniques):
            key = str(name).strip()
            if key.lower().startswith("chr"):
                key = key[3:]
            mapping[i] = self._codes.setdefault(key, len(self._codes))
        return np.where(local >= 0, mapping[np.maximum(local, 0)] if len(mapping) else -1, -1)


@dataclass(frozen=True)
class CisIndex:
    """Phenotype positions, sorted for range look-ups.

    Attributes
    ----------
    window : int
    chromosome : array of int64, shape (n_phenotypes,)
        Chromosome code of each phenotype, -1 when unknown.
    start : array of int64, shape (n_phenotypes,)
    order : array of intp
        Phenotypes with a position, sorted by (chromosome, start).
    keys : array of int64
        ``chromosome * 2^40 + start`` in that order.
    sorted_phenotypes : PhenotypeOperands
        The phenotypes in that order (float64).
    """

    window: int
    chromosome: NDArray[np.int64]
    start: NDArray[np.int64]
    order: NDArray[np.intp]
    keys: NDArray[np.int64]
    sorted_phenotypes: PhenotypeOperands

    @classmethod
    def build(cls, chromosome: NDArray[np.int64], start: NDArray[np.int64], window: int,
              phenotypes: PhenotypeOperands) -> CisIndex:
        known = np.flatnonzero(chromosome >= 0)
        keys = chromosome[known] * _SHIFT + start[known]
        sort = np.argsort(keys, kind="stable")
        order = known[sort]
        values = np.ascontiguousarray(phenotypes.values[order])
        sorted_ops = PhenotypeOperands.build(values, phenotypes.residual_norm[order],
                                             np.dtype(np.float64))
        return cls(int(window), chromosome, start, order, keys[sort], sorted_ops)

    def is_cis(self, variant_chromosome: NDArray[np.int64], variant_position: NDArray[np.int64],
               phenotype: NDArray[np.intp]) -> NDArray[np.bool_]:
        """Whether each (variant, phenotype) pair is cis."""
        same = (self.chromosome[phenotype] == variant_chromosome) & (variant_chromosome >= 0)
        return same & (np.abs(self.start[phenotype] - variant_position) <= self.window)


def cis_hits(terms: BlockTerms, chromosome: NDArray[np.int64], position: NDArray[np.int64],
             index: CisIndex, model: str, fraction: NDArray[np.float64]
             ) -> tuple[PairHits, int]:
    """The cis pairs of a block that pass the threshold, and how many cis pairs were tested.

    Parameters
    ----------
    terms : BlockTerms
    chromosome, position : arrays of int64, shape (n_variants,)
        Chromosome codes (-1 unknown) and positions of the block's variants.
    index : CisIndex
    model : {"linear", "anova", "interaction"}
    fraction : array of float64, shape (n_variants,)
        Threshold on ``explained / available`` (from the cis p threshold).

    Returns
    -------
    hits : PairHits
        ``columns`` are phenotype positions in the input order.
    n_tests : int
    """
    n_columns = terms.directions.shape[0]
    usable = np.flatnonzero((terms.status == TESTED) & (chromosome >= 0))
    if not len(usable) or not len(index.keys):
        return PairHits.empty(n_columns), 0
    keys = chromosome[usable] * _SHIFT + position[usable]
    sort = np.argsort(keys, kind="stable")
    rows, keys = usable[sort], keys[sort]
    breaks = np.union1d(np.flatnonzero(np.diff(chromosome[rows]) != 0) + 1,
                        np.arange(0, len(rows), RUN_LENGTH))
    bounds = np.append(breaks, len(rows))
    exact_position = np.full(len(terms.status), -1, dtype=np.intp)
    exact_position[terms.exact_rows] = np.arange(len(terms.exact_rows))
    margin = screening_margin(np.dtype(np.float64), terms.directions.shape[2])
    parts: list[PairHits] = []
    n_tests = 0
    for first, last in itertools.pairwise(bounds):
        run = rows[first:last]
        low = int(np.searchsorted(index.keys, keys[first] - index.window, side="left"))
        high = int(np.searchsorted(index.keys, keys[last - 1] + index.window, side="right"))
        if high <= low:
            continue
        candidates = index.order[low:high]
        cis = index.is_cis(chromosome[run][:, None], position[run][:, None],
                           candidates[None, :])
        n_tests += int(np.count_nonzero(cis))
        ops = index.sorted_phenotypes
        z = np.matmul(terms.directions[:, run], ops.values[low:high].T)
        share = np.ones(cis.shape)
        exact = exact_position[run] >= 0
        if exact.any() and terms.missing is not None:
            structure = terms.missing.subset(exact_position[run][exact])
            share[exact] = 1.0 - structure.phenotype_correction(ops.by_sample[:, low:high])
        explained, available = explained_and_available(model, z, share)
        passing = cis & (explained >= fraction[run][:, None] * available - margin)
        hit_rows, hit_columns = np.nonzero(passing)
        parts.append(PairHits(run[hit_rows], candidates[hit_columns],
                              z[:, hit_rows, hit_columns], share[hit_rows, hit_columns]))
    return PairHits.concatenate(parts, n_columns), n_tests
