"""Contrasts: named linear combinations of coefficients, from strings or a matrix.

``"CvB = cancer[Cancer] - cancer[Biopsy]"`` is parsed without evaluating anything: coefficient
names are replaced by placeholders and the rest must be numbers, ``+ - * /`` and brackets, with
every term linear in the coefficients (as limma's ``makeContrasts``).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from manylm.design.names import coefficient_aliases
from manylm.errors import ContrastError

__all__ = ["contrast_matrix", "parse_contrast"]


def parse_contrast(text: str, names: Sequence[str]) -> tuple[str, NDArray[np.float64]]:
    """Parse ``"name = expression"`` (or a bare expression) into a name and a weight vector."""
    label, sep, expression = text.partition("=")
    if not sep:
        label, expression = text.strip(), text
    label = label.strip()
    expression = expression.strip()
    if not label or not expression:
        raise ContrastError(f"Cannot read contrast {text!r}: write it as 'name = a - b'.")
    aliases = coefficient_aliases(names)
    index = {name: i for i, name in enumerate(names)}
    # Longest spelling first so that 'x[T.a]' wins over 'x'.
    spellings = sorted(aliases, key=len, reverse=True)
    placeholders: dict[str, int] = {}
    pattern = re.compile("|".join(re.escape(s) for s in spellings))
    used_positions: list[tuple[int, int]] = []

    def substitute(match: re.Match[str]) -> str:
        key = f"_c{len(placeholders)}"
        placeholders[key] = index[aliases[match.group(0)]]
        used_positions.append(match.span())
        return f" {key} "

    rewritten = pattern.sub(substitute, expression).strip()
    try:
        tree = ast.parse(rewritten, mode="eval")
    except SyntaxError:
        raise _unknown(text, rewritten, names) from None
    n = len(names)

    def value(node: ast.AST) -> NDArray[np.float64] | float:
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.Name) and node.id in placeholders:
            unit = np.zeros(n)
            unit[placeholders[node.id]] = 1.0
            return unit
        if isinstance(node, (ast.Name, ast.Subscript, ast.Attribute, ast.Call)):
            raise _unknown(text, ast.unparse(node), names)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = value(node.operand)
            return -inner if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.BinOp):
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.Add):
                return left + right
            if isinstance(node.op, ast.Sub):
                return left - right
            if isinstance(node.op, ast.Mult):
                if isinstance(left, np.ndarray) and isinstance(right, np.ndarray):
                    raise ContrastError(f"Contrast {text!r} multiplies two coefficients.")
                return left * right
            if isinstance(node.op, ast.Div) and not isinstance(right, np.ndarray):
                return left / right
        raise ContrastError(
            f"Cannot read contrast {text!r}: use coefficient names, numbers, + - * / and "
            "brackets, e.g. 'CvB = cancer[Cancer] - cancer[Biopsy]'."
        )

    weights = value(tree)
    if not isinstance(weights, np.ndarray):
        raise ContrastError(f"Contrast {text!r} names no coefficient.")
    return label, weights


def _unknown(text: str, fragment: str, names: Sequence[str]) -> ContrastError:
    cleaned = re.sub(r"_c\d+", "", fragment).strip() or fragment
    return ContrastError(
        f"Contrast {text!r} refers to {cleaned!r}, which is not a coefficient. Coefficients: "
        f"{', '.join(names)}."
    )


def contrast_matrix(
    contrasts: Sequence[str] | Mapping[str, str] | pd.DataFrame | NDArray[np.float64],
    names: Sequence[str],
) -> pd.DataFrame:
    """A coefficients x contrasts matrix from strings, a mapping name -> expression, or a matrix."""
    if isinstance(contrasts, pd.DataFrame):
        matrix = contrasts.astype(float)
        if len(matrix.index) != len(names):
            raise ContrastError(
                f"The contrast matrix has {len(matrix.index)} rows; the design has {len(names)} "
                f"coefficients ({', '.join(names)})."
            )
        return matrix
    if isinstance(contrasts, np.ndarray):
        array = np.atleast_2d(np.asarray(contrasts, dtype=float))
        if array.shape[0] != len(names):
            raise ContrastError(
                f"The contrast matrix has {array.shape[0]} rows; the design has {len(names)} "
                "coefficients."
            )
        return pd.DataFrame(
            array, index=list(names), columns=[f"contrast{j + 1}" for j in range(array.shape[1])]
        )
    if isinstance(contrasts, str):
        contrasts = [contrasts]
    items = (
        [f"{k} = {v}" for k, v in contrasts.items()]
        if isinstance(contrasts, Mapping)
        else list(contrasts)
    )
    columns: dict[str, NDArray[np.float64]] = {}
    for item in items:
        label, weights = parse_contrast(item, names)
        if label in columns:
            raise ContrastError(f"Two contrasts are named {label!r}.")
        columns[label] = weights
    return pd.DataFrame(columns, index=list(names))
