"""p-value adjustment, result tables and decisions."""

from manylm.inference.adjust import ADJUST_METHODS, p_adjust
from manylm.inference.decide import decide_tests
from manylm.inference.tables import SORT_KEYS, top_table

__all__ = ["ADJUST_METHODS", "SORT_KEYS", "decide_tests", "p_adjust", "top_table"]
