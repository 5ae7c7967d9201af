"""Resolve what a user calls a coefficient, a contrast or a term to design columns.

formulaic names treatment-coded levels ``cancer[T.Cancer]``; users also write ``cancer[Cancer]``
(as the issue tracker and most of the field do), or name a whole term (``cancer``) to mean all
of its coefficients.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from manylm.errors import ContrastError

__all__ = ["coefficient_aliases", "resolve_tests"]

_TREATMENT = re.compile(r"^(?P<term>.*)\[T\.(?P<level>.*)\]$")


def coefficient_aliases(names: Sequence[str]) -> dict[str, str]:
    """Every accepted spelling of each coefficient, mapped to its canonical name."""
    aliases: dict[str, str] = {}
    for name in names:
        aliases[name] = name
    for name in names:
        match = _TREATMENT.match(name)
        if match:
            short = f"{match['term']}[{match['level']}]"
            aliases.setdefault(short, name)
            # R's spelling: term and level pasted together (cancerCancer).
            if re.fullmatch(r"[A-Za-z_.][A-Za-z0-9_.]*", match["term"]):
                aliases.setdefault(f"{match['term']}{match['level']}", name)
    return aliases


def resolve_tests(
    requested: Sequence[str],
    names: Sequence[str],
    terms: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """Canonical coefficient names for ``requested`` coefficient or term names.

    Raises
    ------
    ContrastError
        Naming the unknown entries and listing the known coefficients and terms.
    """
    aliases = coefficient_aliases(names)
    terms = terms or {}
    resolved: list[str] = []
    unknown: list[str] = []
    for item in requested:
        key = item.strip()
        if key in aliases:
            chosen = [aliases[key]]
        elif key in terms:
            chosen = list(terms[key])
        else:
            unknown.append(item)
            continue
        resolved.extend(name for name in chosen if name not in resolved)
    if unknown:
        known_terms = [t for t in terms if t != "Intercept"]
        raise ContrastError(
            f"Unknown coefficient or term {', '.join(map(repr, unknown))}. Coefficients: "
            f"{', '.join(names)}"
            + (f". Terms: {', '.join(known_terms)}" if known_terms else "")
            + "."
        )
    return resolved
