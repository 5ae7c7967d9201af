"""``scan``: every variant against every phenotype, as Matrix eQTL and tensorQTL do.

The public verb checks its inputs, matches the samples of genotypes, phenotypes and covariates,
builds the covariate basis and the standardised phenotypes, and runs the block loop
(:func:`manylm.qtl.scan_engine.run_blocks`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from threadpoolctl import threadpool_limits

from manylm.design import Design
from manylm.errors import DataError, DesignError, InputError, ManylmWarning
from manylm.io._ids import quote_ids
from manylm.io.genotypes import GenotypeReader, open_genotypes
from manylm.parallel import cpu_count
from manylm.qtl.cis import ChromosomeCodes, CisIndex
from manylm.qtl.correlation_scan import PhenotypeOperands
from manylm.qtl.genotype_terms import MODELS
from manylm.qtl.output import PairWriter
from manylm.qtl.positions import locate, normalize_positions
from manylm.qtl.residualize import covariate_basis, standardize_phenotypes
from manylm.qtl.result import ScanResult
from manylm.qtl.scan_engine import ScanSettings, run_blocks

__all__ = ["scan"]

BLOCK_VARIANTS = 1024


def scan(
    genotypes: str | os.PathLike[str] | pd.DataFrame | GenotypeReader,
    phenotypes: pd.DataFrame | pd.Series,
    covariates: pd.DataFrame | Design | None = None,
    *,
    p_threshold: float = 1e-5,
    cis_window: int | None = None,
    cis_p_threshold: float = 1.0,
    variant_positions: pd.DataFrame | None = None,
    phenotype_positions: pd.DataFrame | None = None,
    model: str = "linear",
    interaction: str | ArrayLike | None = None,
    maf: float = 0.0,
    missing: str = "complete",
    max_missing_exact: int = 32,
    dtype: Any = "float64",
    n_threads: int | None = None,
    block_variants: int = BLOCK_VARIANTS,
    out: str | os.PathLike[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ScanResult:
    """Test every (variant, phenotype) pair: ``phenotype ~ covariates + genotype``.

    The Matrix eQTL algebra (Shabalin 2012, Bioinformatics 28:1353; tensorQTL, Taylor-Weiner
    et al. 2019): both sides residualised once on the covariates, standardised, one matrix
    product per block, the p threshold turned into a threshold on explained variance up front
    so that only passing pairs are expanded. The statistics equal those of ``lm`` fitted pair
    by pair (to rounding; tested at 1e-8 against R).

    Parameters
    ----------
    genotypes : path, DataFrame or GenotypeReader
        Dosages (variants x samples, values in [0, 2], NaN missing), a PLINK .bed, a VCF/BCF
        (see :func:`manylm.io.genotypes.open_genotypes`).
    phenotypes : DataFrame of shape (n_phenotypes, n_samples), or Series over samples
        Complete (no NaN). A Series is one outcome (e.g. 0/1 case/control status).
    covariates : DataFrame of shape (n_samples, n_covariates), Design, or None
        Numeric covariates indexed by sample ID, or a design from
        :func:`manylm.design_matrix`. An intercept is added when not in their span.
    p_threshold : float, default 1e-5
        Pairs with ``p <= p_threshold`` are written (trans pairs in a cis scan); 0 skips them.
    cis_window : int, optional
        Also a cis scan: pairs with ``|variant position - phenotype start| <= cis_window``
        on the same chromosome form their own family (threshold ``cis_p_threshold``, own BH).
    cis_p_threshold : float, default 1.0
    variant_positions, phenotype_positions : DataFrame, optional
        Indexed by ID, with chromosome and position (or start) columns (see
        :func:`manylm.qtl.positions.normalize_positions`). PLINK and VCF carry their own
        variant positions.
    model : {"linear", "anova", "interaction"}
        ``"anova"``: genotype classes round(dosage) as a factor, F test (beta, se and t are
        NaN; ``F`` and ``df_genotype`` columns). ``"interaction"``: the t of ``g:c``.
    interaction : str or array-like, optional
        The covariate ``c`` of the interaction model: a covariate name, or values per sample
        (in the phenotypes' sample order, or a Series indexed by sample).
    maf : float, default 0
        Variants with a minor allele frequency below this are skipped (and counted).
    missing : {"complete", "mean"}, default "complete"
        Missing calls: exact complete-case tests (each variant fitted on its observed samples,
        as ``lm`` with ``na.action = na.omit``), or mean imputation (Matrix eQTL, tensorQTL).
    max_missing_exact : int, default 32
        Variants with more missing calls are mean-imputed (and counted): the exact correction
        costs ``m^2`` operations per pair.
    dtype : {"float64", "float32"}
        Precision of the screening products; float32 is about twice as fast and gives the
        same pairs and float64 statistics (candidates are recomputed in float64).
    n_threads : int, optional
        Threads for the products (default: every core).
    block_variants : int, default 1024
        Variants per block; memory is about ``block_variants * n_samples * 8 * 6`` bytes plus
        the phenotypes.
    out : path, optional
        Write the table there (``.parquet``, ``.tsv``, ``.csv``, optionally ``.gz``) instead of
        returning it.
    progress : callable, optional
        Called with the number of variants of each finished block.

    Returns
    -------
    ScanResult
        ``table`` (columns ``variant, phenotype, beta, se, t, p_value, adj_p_value``, plus
        ``region`` in a cis scan) unless ``out`` was given, the tests performed per family
        and the variants skipped by reason.
    """
    settings = _settings(p_threshold, cis_p_threshold, cis_window, model, interaction, maf,
                         missing, max_missing_exact, n_threads, block_variants)
    product_dtype = _dtype(dtype)
    # small LAPACK/BLAS calls (a QR of n x k) crawl when a multi-threaded BLAS competes with
    # busy cores; the products that matter are spread over threads by the scan itself
    with threadpool_limits(limits=1, user_api="blas"):
        return _scan(genotypes, phenotypes, covariates, settings, product_dtype, cis_window,
                     variant_positions, phenotype_positions, interaction, block_variants, out,
                     progress)


def _scan(genotypes: str | os.PathLike[str] | pd.DataFrame | GenotypeReader,
          phenotypes: pd.DataFrame | pd.Series, covariates: pd.DataFrame | Design | None,
          settings: ScanSettings, product_dtype: np.dtype, cis_window: int | None,
          variant_positions: pd.DataFrame | None, phenotype_positions: pd.DataFrame | None,
          interaction: str | ArrayLike | None, block_variants: int,
          out: str | os.PathLike[str] | None, progress: Callable[[int], None] | None
          ) -> ScanResult:
    reader = genotypes if isinstance(genotypes, GenotypeReader) else open_genotypes(genotypes)
    frame = _phenotype_frame(phenotypes)
    samples = [str(s) for s in frame.columns]
    _check_samples(samples, reader, covariates)
    covariate_values, covariate_names = _covariate_matrix(covariates, samples)
    extra = _interaction_values(interaction, covariate_values, covariate_names, samples)
    if extra is not None and not any(np.allclose(extra, covariate_values[:, j])
                                     for j in range(covariate_values.shape[1])):
        covariate_values = np.column_stack([covariate_values, extra])
        covariate_names = [*covariate_names, str(interaction) if isinstance(interaction, str)
                           else "interaction"]
    basis = covariate_basis(covariate_values, covariate_names, len(samples))
    if len(samples) - basis.rank - 1 < 1:
        raise DesignError(
            f"{len(samples)} samples and {basis.rank} covariate columns (intercept included) "
            "leave no residual degrees of freedom for a genotype test; use fewer covariates"
        )
    ids = np.asarray(frame.index.astype(str), dtype=object)
    standardized = standardize_phenotypes(frame.to_numpy(dtype=np.float64), basis.q, ids,
                                          n_threads=settings.n_threads)
    not_tested = [str(ids[i]) for i in standardized.constant]
    if not_tested:
        warnings.warn(f"{len(not_tested)} phenotype(s) are constant once the covariates are "
                      f"removed and were not tested: {quote_ids(not_tested, 10)}",
                      ManylmWarning, stacklevel=3)
    kept_ids = ids[standardized.kept]
    operands = PhenotypeOperands.build(standardized.values, standardized.residual_norm,
                                       product_dtype)
    cis_index, locator = _cis_setup(cis_window, reader, phenotype_positions,
                                           variant_positions, kept_ids, operands)
    wanted = set(samples)
    unused = [s for s in reader.sample_ids if s not in wanted]
    if unused:
        warnings.warn(f"{len(unused)} sample(s) of the genotypes have no phenotype and are not "
                      f"used: {quote_ids(unused, 5)}", ManylmWarning, stacklevel=3)
    writer = PairWriter(out, settings.model, with_region=cis_index is not None)
    with writer:
        counts = run_blocks(
            reader.blocks(int(block_variants), samples), basis.q, operands,
            _with_source(settings, reader), writer, interaction=extra,
            cis=cis_index, variant_locator=locator, progress=progress)
        table = writer.finish(kept_ids, counts.n_tests)
    _warn_skipped(counts)
    return ScanResult(
        table=table, path=None if out is None else os.fspath(out), model=settings.model,
        n_tests=dict(counts.n_tests), n_written=dict(counts.n_written),
        n_variants=counts.n_variants, variant_status=dict(counts.variant_status),
        n_imputed=counts.n_imputed, samples=samples, covariates=basis.names,
        phenotypes_not_tested=not_tested, n_phenotypes=len(kept_ids),
        p_threshold=settings.p_threshold,
        cis_p_threshold=settings.cis_p_threshold if cis_index is not None else None,
        cis_window=cis_window, missing=settings.missing, dtype=np.dtype(product_dtype).name,
    )


def _settings(p_threshold: float, cis_p_threshold: float, cis_window: int | None, model: str,
              interaction: object, maf: float, missing: str, max_missing_exact: int,
              n_threads: int | None, block_variants: int) -> ScanSettings:
    for name, value in (("p_threshold", p_threshold), ("cis_p_threshold", cis_p_threshold)):
        if not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise InputError(f"The '{name}' parameter must be a number in [0, 1]. Got {value!r}.")
    if model not in MODELS:
        raise InputError(f"The 'model' parameter must be one of {', '.join(MODELS)}. "
                         f"Got {model!r}.")
    if (model == "interaction") != (interaction is not None):
        raise InputError("The interaction model needs 'interaction' (a covariate name or values)"
                         ", and 'interaction' needs model='interaction'.")
    if not 0 <= maf <= 0.5:
        raise InputError(f"The 'maf' parameter must be in [0, 0.5]. Got {maf!r}.")
    if missing not in ("complete", "mean"):
        raise InputError(f"The 'missing' parameter must be 'complete' or 'mean'. Got {missing!r}.")
    if cis_window is not None and (isinstance(cis_window, bool) or int(cis_window) != cis_window
                                   or cis_window < 0):
        raise InputError(f"The 'cis_window' parameter must be a whole number of bases >= 0. "
                         f"Got {cis_window!r}.")
    for name, value in (("max_missing_exact", max_missing_exact),
                        ("block_variants", block_variants)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < (
                0 if name == "max_missing_exact" else 1):
            raise InputError(f"The '{name}' parameter must be a positive integer. Got {value!r}.")
    threads = cpu_count() if n_threads is None else n_threads
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise InputError(f"The 'n_threads' parameter must be an integer >= 1. Got {n_threads!r}.")
    return ScanSettings(model=model, p_threshold=float(p_threshold),
                        cis_p_threshold=float(cis_p_threshold), maf=float(maf), missing=missing,
                        max_missing_exact=int(max_missing_exact), n_threads=int(threads))


def _with_source(settings: ScanSettings, reader: GenotypeReader) -> ScanSettings:
    from dataclasses import replace

    return replace(settings, check_dosage_range=reader.kind == "dosage", source=reader.path)


def _dtype(dtype: Any) -> np.dtype:
    try:
        chosen = np.dtype(dtype)
    except TypeError:
        chosen = None
    if chosen not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise InputError(f"The 'dtype' parameter must be 'float64' or 'float32'. Got {dtype!r}.")
    return chosen


def _phenotype_frame(phenotypes: pd.DataFrame | pd.Series) -> pd.DataFrame:
    if isinstance(phenotypes, pd.Series):
        name = str(phenotypes.name) if phenotypes.name is not None else "outcome"
        values = pd.to_numeric(phenotypes, errors="coerce")
        if (values.isna() & phenotypes.notna()).any():
            raise DataError(f"outcome {name!r} must be numeric (e.g. 0/1 for case/control); "
                            f"got values such as {phenotypes[values.isna()].iloc[0]!r}")
        return pd.DataFrame([values.to_numpy(dtype=np.float64)], index=[name],
                            columns=phenotypes.index.astype(str))
    if not isinstance(phenotypes, pd.DataFrame):
        raise InputError("phenotypes must be a DataFrame (phenotypes x samples) or a Series "
                         f"(one outcome over samples), not {type(phenotypes).__name__}")
    if phenotypes.shape[0] == 0 or phenotypes.shape[1] == 0:
        raise InputError(f"phenotypes is empty (shape {phenotypes.shape})")
    if phenotypes.columns.astype(str).has_duplicates:
        repeated = phenotypes.columns.astype(str)[phenotypes.columns.astype(str).duplicated()]
        raise InputError(f"phenotypes: sample IDs repeated: {quote_ids(list(repeated), 10)}")
    return phenotypes


def _check_samples(samples: list[str], reader: GenotypeReader,
                   covariates: pd.DataFrame | Design | None) -> None:
    """Name every phenotype sample that lacks genotypes or covariates, in one message."""
    problems = []
    in_genotypes = set(reader.sample_ids)
    no_genotypes = [s for s in samples if s not in in_genotypes]
    if no_genotypes:
        problems.append(f"{len(no_genotypes)} sample(s) have no genotypes in {reader.path}: "
                        f"{quote_ids(no_genotypes, 10)}")
    if covariates is not None:
        ids = (covariates.sample_ids if isinstance(covariates, Design)
               else [str(s) for s in covariates.index])
        known = set(ids)
        no_covariates = [s for s in samples if s not in known]
        if no_covariates:
            problems.append(f"{len(no_covariates)} sample(s) have no covariates: "
                            f"{quote_ids(no_covariates, 10)}")
    if problems:
        raise DesignError(
            "sample IDs do not match across genotypes, phenotypes and covariates: "
            + "; ".join(problems) + ". Remove those samples from the phenotypes or add them to "
            "the other inputs (check the spelling of the IDs)"
        )


def _covariate_matrix(covariates: pd.DataFrame | Design | None, samples: list[str]
                      ) -> tuple[np.ndarray, list[str]]:
    if covariates is None:
        return np.zeros((len(samples), 0)), []
    if isinstance(covariates, Design):
        frame = covariates.as_frame()
    elif isinstance(covariates, pd.DataFrame):
        frame = covariates
    else:
        raise InputError("covariates must be a DataFrame (samples x covariates) or a Design, "
                         f"not {type(covariates).__name__}")
    index = frame.index.astype(str)
    aligned = frame.set_axis(index).loc[samples]
    non_numeric = [str(c) for c in aligned.columns
                   if not pd.api.types.is_numeric_dtype(aligned[c])]
    if non_numeric:
        raise DesignError(f"covariate(s) {', '.join(map(repr, non_numeric))} are not numeric; "
                          "encode factors first (e.g. with a formula: '~ C(batch) + age')")
    return aligned.to_numpy(dtype=np.float64), [str(c) for c in aligned.columns]


def _interaction_values(interaction: str | ArrayLike | None, values: np.ndarray,
                        names: list[str], samples: list[str]) -> np.ndarray | None:
    if interaction is None:
        return None
    if isinstance(interaction, str):
        if interaction not in names:
            raise DesignError(f"interaction covariate {interaction!r} is not a covariate; "
                              f"covariates: {', '.join(names) or 'none'}")
        return values[:, names.index(interaction)].copy()
    if isinstance(interaction, pd.Series):
        series = interaction.set_axis(interaction.index.astype(str))
        known = set(series.index)
        missing = [s for s in samples if s not in known]
        if missing:
            raise DesignError(f"interaction values missing for sample(s) {quote_ids(missing, 10)}")
        result = series.loc[samples].to_numpy(dtype=np.float64)
    else:
        result = np.asarray(interaction, dtype=np.float64).ravel()
        if len(result) != len(samples):
            raise DesignError(f"interaction has {len(result)} values for {len(samples)} samples")
    if not np.all(np.isfinite(result)):
        raise DesignError("interaction values must be finite for every sample")
    return result


def _cis_setup(cis_window: int | None, reader: GenotypeReader,
               phenotype_positions: pd.DataFrame | None, variant_positions: pd.DataFrame | None,
               phenotype_ids: np.ndarray, operands: PhenotypeOperands,
               ) -> tuple[CisIndex | None, Any]:
    if cis_window is None:
        return None, None
    if phenotype_positions is None:
        raise InputError("a cis scan (cis_window) needs phenotype_positions: a table of "
                         "chromosome and start per phenotype")
    if variant_positions is None and not reader.has_positions:
        raise InputError(f"a cis scan needs the positions of the variants of {reader.path}: "
                         "give variant_positions (dosage matrices carry none)")
    codes = ChromosomeCodes()
    phenotype_table = normalize_positions(phenotype_positions, "phenotype positions")
    chromosome, start = locate(phenotype_ids, phenotype_table, codes)
    unplaced = int(np.count_nonzero(chromosome < 0))
    if unplaced:
        warnings.warn(f"{unplaced} phenotype(s) have no position and are only tested in trans",
                      ManylmWarning, stacklevel=4)
    index = CisIndex.build(chromosome, start, int(cis_window), operands)
    variant_table = (None if variant_positions is None
                     else normalize_positions(variant_positions, "variant positions"))

    def locator(block: Any) -> tuple[np.ndarray, np.ndarray]:
        if variant_table is not None:
            return locate(block.variant_ids, variant_table, codes)
        return codes.encode(block.chromosome), np.asarray(block.position, dtype=np.int64)

    return index, locator


def _warn_skipped(counts: Any) -> None:
    skipped = {k: v for k, v in counts.variant_status.items() if k != "tested" and v}
    if skipped:
        detail = ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in skipped.items())
        warnings.warn(f"{sum(skipped.values()):,} of {counts.n_variants:,} variants not tested: "
                      f"{detail}", ManylmWarning, stacklevel=4)
    if counts.n_imputed:
        warnings.warn(f"{counts.n_imputed:,} variants with missing calls were mean-imputed "
                      "(missing='mean', or more missing calls than max_missing_exact)",
                      ManylmWarning, stacklevel=4)
