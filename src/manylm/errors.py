"""One error hierarchy for manylm.

Every error a user can cause derives from :class:`ManylmError`, so a caller (and the command
line) can tell a user mistake from a bug. Messages say what was wrong, where (file, row, column,
sample or feature) and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "ContrastError",
    "DataError",
    "DesignError",
    "EstimabilityError",
    "FormulaError",
    "InputError",
    "ManylmError",
    "ManylmWarning",
]


class ManylmError(Exception):
    """Base class of every error raised by manylm for bad input or impossible requests."""


class InputError(ManylmError, ValueError):
    """A file, table or argument that cannot be used as given."""


class DataError(InputError):
    """Values in the data matrix or weights that cannot be fitted (non-numeric, infinite...)."""


class DesignError(InputError):
    """A design matrix or sample sheet that cannot define the model."""


class FormulaError(DesignError):
    """A model formula that cannot be parsed, names unknown columns or is not allowed."""


class EstimabilityError(DesignError):
    """A requested coefficient that the design cannot estimate."""


class ContrastError(InputError):
    """A contrast or test that names unknown coefficients or cannot be parsed."""


class ManylmWarning(UserWarning):
    """Something the user should know about (dropped samples, non-estimable coefficients)."""
