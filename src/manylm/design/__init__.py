"""Design matrices, contrasts and estimability."""

from manylm.design.contrasts import contrast_matrix, parse_contrast
from manylm.design.estimability import RANK_TOLERANCE, estimable_columns
from manylm.design.matrix import Design, design_matrix
from manylm.design.names import coefficient_aliases, resolve_tests
from manylm.design.safe_formula import parse_formula

__all__ = [
    "RANK_TOLERANCE",
    "Design",
    "coefficient_aliases",
    "contrast_matrix",
    "design_matrix",
    "estimable_columns",
    "parse_contrast",
    "parse_formula",
    "resolve_tests",
]
