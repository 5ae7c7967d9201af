"""Known and unknown confounders: surrogate variables (sva), ComBat, batch-effect removal.

The estimators reproduce Bioconductor's sva package (Leek & Storey 2007; Johnson, Li & Rabinovic
2007 for ComBat; Zhang, Parmigiani & Johnson 2020 for ComBat-seq) on manylm's engine.
"""

from manylm.confounders.batch_effect import remove_batch_effect
from manylm.confounders.combat import CombatResult, combat, fit_combat
from manylm.confounders.combat_seq import CombatSeqResult, combat_seq, fit_combat_seq
from manylm.confounders.nested_models import NestedModels, nested_f_test, nested_models
from manylm.confounders.num_sv import NUM_SV_METHODS, num_sv
from manylm.confounders.residual_structure import ResidualStructure, residual_components
from manylm.confounders.surrogates_for_fit import (
    design_with_surrogates,
    estimate_surrogates_for_design,
)
from manylm.confounders.sva import SVA_METHODS, SurrogateVariables, sva, svaseq

__all__ = [
    "NUM_SV_METHODS",
    "SVA_METHODS",
    "CombatResult",
    "CombatSeqResult",
    "NestedModels",
    "ResidualStructure",
    "SurrogateVariables",
    "combat",
    "combat_seq",
    "design_with_surrogates",
    "estimate_surrogates_for_design",
    "fit_combat",
    "fit_combat_seq",
    "nested_f_test",
    "nested_models",
    "num_sv",
    "remove_batch_effect",
    "residual_components",
    "sva",
    "svaseq",
]
