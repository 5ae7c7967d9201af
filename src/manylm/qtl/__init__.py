"""Every variant against every phenotype: QTL and association scans (Matrix eQTL algebra).

:func:`scan` tests ``phenotype ~ covariates + genotype`` for every (variant, phenotype) pair
(or the ANOVA / interaction variants), writes the pairs below a p threshold with BH-adjusted
p-values over all tests performed, and splits cis from trans pairs when positions are given.
"""

from manylm.qtl.fdr import bh_adjust_written
from manylm.qtl.genotype_terms import MODELS, STATUS
from manylm.qtl.result import ScanResult
from manylm.qtl.scan import scan

__all__ = ["MODELS", "STATUS", "ScanResult", "bh_adjust_written", "scan"]
