"""The block loop of a scan: genotype blocks in, passing pairs out, tests counted.

For each block of variants: check the dosages, build the adjusted genotype columns
(:func:`~manylm.qtl.genotype_terms.genotype_terms`), screen every pair against the trans
threshold (:func:`~manylm.qtl.correlation_scan.trans_hits`) and the cis pairs against the cis
threshold (:func:`~manylm.qtl.cis.cis_hits`), compute the statistics of the pairs that pass and
hand them to the writer. The next block is read and adjusted on a background thread
meanwhile. BLAS runs
single-threaded inside the loop; the tiles of a block are spread over ``n_threads`` threads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from manylm.errors import DataError
from manylm.io.genotypes import GenotypeBlock
from manylm.qtl.cis import CisIndex, cis_hits
from manylm.qtl.correlation_scan import PairHits, PhenotypeOperands, trans_hits
from manylm.qtl.genotype_terms import STATUS, TESTED, BlockTerms, genotype_terms
from manylm.qtl.output import PairWriter
from manylm.qtl.pair_statistics import pair_statistics
from manylm.qtl.thresholds import explained_fraction_threshold

__all__ = ["ScanCounts", "ScanSettings", "run_blocks"]

T = TypeVar("T")


@dataclass(frozen=True)
class ScanSettings:
    """Options of the block loop (validated by :func:`manylm.qtl.scan`)."""

    model: str = "linear"
    p_threshold: float = 1e-5
    cis_p_threshold: float = 1.0
    maf: float = 0.0
    missing: str = "complete"
    max_missing_exact: int = 32
    n_threads: int = 1
    check_dosage_range: bool = True
    source: str = "genotypes"


@dataclass
class ScanCounts:
    """What a scan did: variants by outcome, tests and written pairs per family."""

    n_variants: int = 0
    variant_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUS, 0))
    n_imputed: int = 0
    n_tests: dict[str, int] = field(default_factory=lambda: {"trans": 0, "cis": 0})
    n_written: dict[str, int] = field(default_factory=lambda: {"trans": 0, "cis": 0})


def run_blocks(blocks: Iterable[GenotypeBlock], q: NDArray[np.float64],
               phenotypes: PhenotypeOperands, settings: ScanSettings, writer: PairWriter, *,
               interaction: NDArray[np.float64] | None = None, cis: CisIndex | None = None,
               variant_locator: Callable[[GenotypeBlock], tuple[NDArray[np.int64],
                                                                NDArray[np.int64]]] | None = None,
               progress: Callable[[int], None] | None = None) -> ScanCounts:
    """Scan every block; return the counts (the pairs go to ``writer``).

    Parameters
    ----------
    blocks : iterable of GenotypeBlock
        Dosages of the scan's samples, in the phenotypes' sample order.
    q : array of shape (n_samples, rank)
        Orthonormal covariate basis.
    phenotypes : PhenotypeOperands
    settings : ScanSettings
    writer : PairWriter
    interaction : array of shape (n_samples,), optional
    cis : CisIndex, optional
        Phenotype positions and window (cis scans).
    variant_locator : callable, optional
        Chromosome codes and positions of a block's variants (cis scans).
    progress : callable, optional
        Called with the number of variants of each finished block.
    """
    counts = ScanCounts()
    with threadpool_limits(limits=1, user_api="blas"):
        def prepare(block: GenotypeBlock) -> tuple[GenotypeBlock, BlockTerms]:
            _check_dosages(block, settings)
            return block, genotype_terms(block.dosages, q, model=settings.model,
                                         interaction=interaction, maf=settings.maf,
                                         missing=settings.missing,
                                         max_missing_exact=settings.max_missing_exact)

        # the next block is read and adjusted while this one's tiles are multiplied
        for block, terms in _prefetched(map(prepare, blocks)):
            _count_variants(counts, terms)
            tested = terms.status == TESTED
            df_safe = np.where(tested, terms.df, 1)
            location = None
            n_cis_tests = 0
            if cis is not None and variant_locator is not None:
                location = variant_locator(block)
                fraction = explained_fraction_threshold(settings.cis_p_threshold, df_safe,
                                                        terms.n_terms)
                hits, n_cis_tests = cis_hits(terms, location[0], location[1], cis,
                                             settings.model, fraction)
                counts.n_tests["cis"] += n_cis_tests
                counts.n_written["cis"] += _write_hits(
                    hits, block, terms, phenotypes, settings, settings.cis_p_threshold,
                    writer, region=1)
            counts.n_tests["trans"] += int(tested.sum()) * phenotypes.n_phenotypes - n_cis_tests
            if settings.p_threshold > 0:
                fraction = explained_fraction_threshold(settings.p_threshold, df_safe,
                                                        terms.n_terms)
                hits = trans_hits(terms, phenotypes, settings.model, fraction,
                                  n_threads=settings.n_threads)
                if location is not None and cis is not None and len(hits.rows):
                    keep = ~cis.is_cis(location[0][hits.rows], location[1][hits.rows],
                                       hits.columns)
                    hits = _subset(hits, keep)
                counts.n_written["trans"] += _write_hits(
                    hits, block, terms, phenotypes, settings, settings.p_threshold, writer,
                    region=0)
            if progress is not None:
                progress(len(block.variant_ids))
    return counts


def _write_hits(hits: PairHits, block: GenotypeBlock, terms: BlockTerms,
                phenotypes: PhenotypeOperands, settings: ScanSettings, p_threshold: float,
                writer: PairWriter, region: int) -> int:
    if not len(hits.rows):
        return 0
    statistics = pair_statistics(
        settings.model, hits.z, hits.share, terms.df[hits.rows], terms.n_terms[hits.rows],
        phenotypes.residual_norm[hits.columns], terms.beta_scale[hits.rows])
    passing = statistics["p_value"] <= p_threshold
    if not passing.all():
        statistics = {name: values[passing] for name, values in statistics.items()}
        hits = _subset(hits, passing)
    writer.add(block.variant_ids[hits.rows], hits.columns, statistics, region,
               df_genotype=terms.n_terms[hits.rows])
    return len(hits.rows)


def _subset(hits: PairHits, keep: NDArray[np.bool_]) -> PairHits:
    return PairHits(hits.rows[keep], hits.columns[keep], hits.z[:, keep], hits.share[keep])


def _count_variants(counts: ScanCounts, terms: BlockTerms) -> None:
    counts.n_variants += len(terms.status)
    for code, number in enumerate(np.bincount(terms.status, minlength=len(STATUS))):
        counts.variant_status[STATUS[code]] += int(number)
    counts.n_imputed += terms.n_imputed


def _check_dosages(block: GenotypeBlock, settings: ScanSettings) -> None:
    values = block.dosages
    if not settings.check_dosage_range or values.size == 0:
        return
    low, high = np.fmin.reduce(values, axis=None), np.fmax.reduce(values, axis=None)
    if not (low < 0 or high > 2):
        return
    bad = (values < 0) | (values > 2)
    row = int(np.argmax(bad.any(axis=1)))
    column = int(np.argmax(bad[row]))
    raise DataError(
        f"{settings.source}: variant {block.variant_ids[row]!r}, sample "
        f"{block.sample_ids[column]!r}: dosage {values[row, column]:g} is outside [0, 2] "
        f"({int(bad.sum())} such value(s) in variants {block.start + 1:,}-"
        f"{block.start + len(block.variant_ids):,}); dosages count copies of an allele: check "
        "that the matrix holds dosages (not, e.g., expression or coded genotypes such as 1/2/3)"
    )


def _prefetched(iterator: Iterator[T]) -> Iterator[T]:
    """Items of ``iterator``, the next one read on a background thread meanwhile."""
    with ThreadPoolExecutor(1, thread_name_prefix="manylm-read") as reader:
        pending = reader.submit(next, iterator, None)
        while True:
            item = pending.result()
            if item is None:
                return
            pending = reader.submit(next, iterator, None)
            yield item
