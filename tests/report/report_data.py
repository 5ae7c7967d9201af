"""Constants and helpers shared by the report tests (imported by conftest and the tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

INPUTS = Path(__file__).parent.parent / "reference" / "inputs"
HOSTILE = "<script>alert(1)</script>"
HOSTILE_IMG = '<img src=x onerror="document.body.dataset.pwned=1">'
COEF = "cancer[T.Cancer]"


@dataclass
class Bladder:
    expression: pd.DataFrame
    samples: pd.DataFrame
    design: Any
    fit: Any
    result: Any
    table: pd.DataFrame


def structure_of(bladder: Bladder) -> Any:
    """The real residual structure when that module exists, else a stand-in of the same shape."""
    try:
        from manylm.confounders.residual_structure import residual_components
    except ImportError:
        index = pd.Index(["PC1", "PC2", "PC3"], name="component")
        columns = pd.Index(["batch", "outcome", "sv1"], name="variable")

        class FakeStructure:
            variance_explained = pd.Series([0.4, 0.2, 0.1], index=index)
            r_squared = pd.DataFrame([[0.8, 0.1, 0.9], [0.1, 0.2, 0.1], [0.0, 0.3, 0.0]],
                                     index=index, columns=columns)
            p_values = pd.DataFrame([[1e-9, 0.3, 1e-12], [0.5, 0.2, 0.5], [0.9, 0.01, 0.9]],
                                    index=index, columns=columns)
        return FakeStructure()
    return residual_components(bladder.fit.residuals,
                               bladder.samples.loc[list(bladder.design.sample_ids)])
