"""Exact complete-case tests for variants with missing genotypes, without refitting.

Fitting ``y ~ covariates + g`` on the samples where ``g`` is observed is the same as fitting it
on every sample with one indicator column per missing sample added to the covariates (each
indicator absorbs its sample). With ``Q`` the orthonormal covariate basis, ``M`` the ``m``
missing samples and ``Z = I - Q[M] Q[M]'`` (the ``m x m`` block of the residual projector),
the residual projector of the enlarged covariates is ``P - P E_M Z^+ E_M' P``, so for two
covariate-residualised vectors ``a`` and ``b``

    <a, b>_M = a'b - (W' a[M])' (W' b[M]),      with  W W' = Z^+ (W: m x rank(Z)).

Everything a test needs is such a product: the genotype's own sum of squares, its cross-products
with each phenotype (folded into the genotype vector itself: ``a - E_M W W' a[M]`` has the
same cross-product with any residualised ``y``), and the phenotype's complete-case residual
sum of squares, which differs per (variant, phenotype) pair by the ``m``-term correction
``|W' y[M]|^2``. That per-pair correction costs about ``2 m^2`` operations against ``2 n`` for
the product itself, so it is used for variants with up to ``max_missing_exact`` missing calls.
When removing the missing samples makes the covariates rank deficient (a sample alone in its
batch), ``Z`` is singular: its rank replaces ``m`` in the degrees of freedom, as ``lm`` would
drop the aliased covariate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["MissingSamples", "missing_samples_structure"]

#: Eigenvalues of Z below this are zero: removing those samples leaves a covariate unestimable.
_EIGEN_TOLERANCE = 1e-9
#: Padding entries get this eigenvalue, outside [0, 1], so they never mix with real ones.
_PADDING_EIGENVALUE = 2.0


@dataclass(frozen=True)
class MissingSamples:
    """The complete-case correction of a set of variants with missing genotypes.

    Attributes
    ----------
    index : array of intp, shape (n_variants, max_missing)
        The missing samples of each variant, padded with sample 0.
    whitening : array of float64, shape (n_variants, max_missing, max_missing)
        ``W`` of each variant, zero in padded rows and in the columns of dropped directions.
    rank : array of int64, shape (n_variants,)
        ``rank(Z)``: how many residual degrees of freedom the missing samples take.
    """

    index: NDArray[np.intp]
    whitening: NDArray[np.float64]
    rank: NDArray[np.int64]

    def subset(self, rows: NDArray[np.intp]) -> MissingSamples:
        """The correction of some of the variants (positions in this structure)."""
        return MissingSamples(self.index[rows], self.whitening[rows], self.rank[rows])

    def project(self, residuals: NDArray[np.float64]) -> NDArray[np.float64]:
        """``W' a[M]`` of one residualised vector per variant.

        Parameters
        ----------
        residuals : array of shape (n_variants, n_samples)

        Returns
        -------
        array of shape (n_variants, max_missing)
        """
        gathered = np.take_along_axis(residuals, self.index, axis=1)
        return np.einsum("vmr,vm->vr", self.whitening, gathered)

    def inner(self, a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
        """Complete-case inner products ``<a_v, b_v>_M`` of per-variant residual vectors."""
        return np.einsum("vn,vn->v", a, b) - np.einsum("vr,vr->v", self.project(a),
                                                       self.project(b))

    def fold(self, residuals: NDArray[np.float64]) -> NDArray[np.float64]:
        """``a - E_M W W' a[M]``: the vector whose plain product with any residualised phenotype
        is its complete-case cross-product."""
        correction = np.einsum("vmr,vr->vm", self.whitening, self.project(residuals))
        folded = residuals.copy()
        rows = np.broadcast_to(np.arange(len(folded))[:, None], self.index.shape)
        # padded entries point at sample 0 with a zero correction: a harmless += 0
        np.add.at(folded, (rows, self.index), -correction)
        return folded

    def phenotype_correction(self, phenotypes_by_sample: NDArray[np.floating]
                             ) -> NDArray[np.float64]:
        """``|W_v' y_p[M_v]|^2`` for every variant v and phenotype p.

        Parameters
        ----------
        phenotypes_by_sample : array of shape (n_samples, n_phenotypes)
            Standardised phenotype residuals, samples in rows.

        Returns
        -------
        array of float64, shape (n_variants, n_phenotypes)
            What dropping the variant's missing samples removes from each phenotype's
            (unit) residual sum of squares.
        """
        gathered = phenotypes_by_sample[self.index]  # (v, m, p)
        projected = np.matmul(self.whitening.transpose(0, 2, 1), gathered)
        return np.einsum("vrp,vrp->vp", projected, projected)


def missing_samples_structure(q: NDArray[np.float64],
                              missing: NDArray[np.bool_]) -> MissingSamples:
    """Build the complete-case correction for variants with missing genotypes.

    Parameters
    ----------
    q : array of shape (n_samples, rank)
        Orthonormal covariate basis.
    missing : array of bool, shape (n_variants, n_samples)
        Missing genotype calls; every row has at least one.

    Returns
    -------
    MissingSamples
    """
    n_variants = missing.shape[0]
    counts = missing.sum(axis=1)
    width = int(counts.max(initial=1))
    # stable argsort of "not missing" puts each row's missing samples first, in sample order
    index = np.argsort(~missing, axis=1, kind="stable")[:, :width]
    real = np.arange(width)[None, :] < counts[:, None]
    index = np.where(real, index, 0)
    rows_q = q[index]  # (v, m, k)
    block = -np.matmul(rows_q, rows_q.transpose(0, 2, 1))
    diagonal = np.where(real, 1.0, _PADDING_EIGENVALUE)
    block[:, np.arange(width), np.arange(width)] += diagonal
    pad_pair = ~(real[:, :, None] & real[:, None, :])
    off_diagonal = ~np.eye(width, dtype=bool)[None]
    block[pad_pair & off_diagonal] = 0.0
    eigenvalues, eigenvectors = np.linalg.eigh(block)
    keep = (eigenvalues > _EIGEN_TOLERANCE) & (eigenvalues < 1.5)
    scale = np.where(keep, 1.0 / np.sqrt(np.where(keep, eigenvalues, 1.0)), 0.0)
    whitening = eigenvectors * scale[:, None, :]
    whitening[~real] = 0.0
    return MissingSamples(index=index.astype(np.intp), whitening=whitening,
                          rank=keep.sum(axis=1).astype(np.int64)[:n_variants])
