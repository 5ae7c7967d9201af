"""Validate a Wilkinson formula before anything evaluates it.

formulaic evaluates the Python expressions inside a formula (``log(x)``, ``C(batch)``). A formula
that comes from a command line or a file must never run code, so every factor expression is
parsed with :mod:`ast` and accepted only when it is built from column names, a fixed set of
transforms, and literals. Evaluation then happens in a context holding only those transforms.
"""

from __future__ import annotations

import ast
import types
from collections.abc import Iterable

import numpy as np
from formulaic import Formula

from manylm.errors import FormulaError

__all__ = ["ALLOWED_FUNCTIONS", "evaluation_context", "parse_formula"]

#: Functions a formula may call. formulaic supplies ``C``, ``I``, ``Q``, ``center``, ``scale``,
#: ``poly``, ``bs``, ``cr`` and the ``contr.*`` codings; the numpy ones are added to the context.
ALLOWED_FUNCTIONS = frozenset(
    {
        "C", "I", "Q", "center", "scale", "standardize", "poly", "bs", "cr", "cs",
        "log", "log2", "log10", "log1p", "exp", "sqrt", "abs",
    }
)
_NUMPY_FUNCTIONS = ("log", "log2", "log10", "log1p", "exp", "sqrt", "abs")
_CONTRAST_CODINGS = frozenset({"treatment", "sum", "helmert", "poly", "diff", "custom"})
_ALLOWED_OPERATORS = (
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd, ast.FloorDiv, ast.Mod,
)


def evaluation_context() -> dict[str, object]:
    """The only names a formula is evaluated against (besides the sample sheet's columns)."""
    numpy_subset = types.SimpleNamespace(**{name: getattr(np, name) for name in _NUMPY_FUNCTIONS})
    context: dict[str, object] = {name: getattr(np, name) for name in _NUMPY_FUNCTIONS}
    context["np"] = numpy_subset
    context["numpy"] = numpy_subset
    return context


def parse_formula(formula: str, columns: Iterable[str]) -> tuple[Formula, set[str]]:
    """Parse ``formula`` and check that it only refers to ``columns``, literals and transforms.

    Returns the parsed formula and the set of sample-sheet columns it uses.

    Raises
    ------
    FormulaError
        If the formula cannot be parsed, uses a construct that could run code, or names a
        column that does not exist (the message lists the available columns).
    """
    if not isinstance(formula, str) or not formula.strip():
        raise FormulaError("The design formula is empty: give one such as '~ group + batch'.")
    text = formula.strip()
    if "~" not in text:
        text = "~ " + text
    lhs, _, _ = text.partition("~")
    if lhs.strip():
        raise FormulaError(
            f"Design formula {formula!r} has a left-hand side ({lhs.strip()!r}); the response is "
            "the expression matrix, so write only the right-hand side, e.g. '~ group + batch'."
        )
    try:
        parsed = Formula(text)
    except Exception as error:  # formulaic raises several types for malformed input
        raise FormulaError(f"Cannot parse design formula {formula!r}: {error}") from None
    available = list(columns)
    available_set = set(available)
    used: set[str] = set()
    for term in parsed:
        for factor in term.factors:
            method = getattr(factor.eval_method, "value", str(factor.eval_method))
            if method == "literal":
                continue
            if method == "lookup":
                used.add(factor.expr)
                continue
            used |= _check_expression(factor.expr, formula, available_set)
    unknown = sorted(name for name in used if name not in available_set)
    if unknown:
        raise FormulaError(
            f"Design formula {formula!r} names {_quoted(unknown)}, not a column of the sample "
            f"sheet. Available columns: {_quoted(available)}."
        )
    return parsed, used


def _check_expression(expression: str, formula: str, columns: set[str]) -> set[str]:
    """Return the column names an expression uses; raise if it could do anything but compute."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        raise FormulaError(f"Cannot parse {expression!r} in design formula {formula!r}.") from None
    used: set[str] = set()

    def refuse(what: str) -> FormulaError:
        return FormulaError(
            f"Design formula {formula!r}: {what} in {expression!r} is not allowed. A formula may "
            "use column names, numbers and strings, arithmetic, and the transforms "
            f"{', '.join(sorted(ALLOWED_FUNCTIONS))}."
        )

    def visit(node: ast.AST, *, callee: bool = False) -> None:
        if isinstance(node, ast.Expression):
            visit(node.body)
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, (int, float, str, bool)) or node.value is Ellipsis:
                raise refuse(f"the literal {node.value!r}")
        elif isinstance(node, ast.Name):
            if node.id.startswith("_"):
                raise refuse(f"the name {node.id!r}")
            if callee:
                if node.id not in ALLOWED_FUNCTIONS:
                    raise refuse(f"calling {node.id!r}")
            elif node.id in ALLOWED_FUNCTIONS and node.id not in columns:
                raise refuse(f"the bare function {node.id!r}")
            else:
                used.add(node.id)
        elif isinstance(node, ast.Attribute):
            # Only np.log(...)-style calls and contr.treatment(...)-style codings.
            base = node.value
            if not (callee and isinstance(base, ast.Name)):
                raise refuse("attribute access")
            if base.id in {"np", "numpy"} and node.attr in _NUMPY_FUNCTIONS:
                return
            if base.id == "contr" and node.attr in _CONTRAST_CODINGS:
                return
            raise refuse(f"'{base.id}.{node.attr}'")
        elif isinstance(node, ast.Call):
            visit(node.func, callee=True)
            for argument in node.args:
                if isinstance(argument, ast.Starred):
                    raise refuse("argument unpacking")
                visit(argument)
            for keyword in node.keywords:
                if keyword.arg is None or keyword.arg.startswith("_"):
                    raise refuse("keyword unpacking")
                visit(keyword.value)
        elif isinstance(node, ast.BinOp):
            if not isinstance(node.op, _ALLOWED_OPERATORS):
                raise refuse(f"the operator {type(node.op).__name__}")
            visit(node.left)
            visit(node.right)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, _ALLOWED_OPERATORS):
                raise refuse(f"the operator {type(node.op).__name__}")
            visit(node.operand)
        elif isinstance(node, (ast.List, ast.Tuple)):
            for element in node.elts:
                visit(element)
        else:
            raise refuse(f"the construct {type(node).__name__}")

    visit(tree)
    return used


def _quoted(names: Iterable[str], limit: int = 30) -> str:
    names = list(names)
    shown = ", ".join(repr(name) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
