"""Engines that run the per-block fit over all features: in memory, streamed, or on Dask.

:func:`fit_streaming` reads a matrix a block of rows at a time (from a
:class:`~manylm.io.feature_blocks.FeatureBlockSource`, or an :class:`ArraySource` over an array
in memory) and writes the results table in bounded memory; :func:`fit_dask` runs the same chunk
functions on a Dask cluster (``pip install 'manylm[dask]'``). Both give the table of
``top_table(ebayes(lm_fit(...)))``.

The streaming modules build on :mod:`manylm.fit`, which itself uses the in-memory engine, so
they are imported on first use.
"""

from typing import Any

from manylm.engine.inmemory import default_block_rows, fit_in_blocks, row_blocks

__all__ = [
    "ArraySource",
    "StreamingResult",
    "choose_engine",
    "default_block_rows",
    "fit_dask",
    "fit_in_blocks",
    "fit_streaming",
    "parse_memory",
    "row_blocks",
]

_LAZY = {
    "ArraySource": "manylm.engine.array_source",
    "StreamingResult": "manylm.engine.streaming",
    "fit_streaming": "manylm.engine.streaming",
    "fit_dask": "manylm.engine.dask_backend",
    "choose_engine": "manylm.engine.plan",
    "parse_memory": "manylm.engine.plan",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'manylm.engine' has no attribute {name!r}")
