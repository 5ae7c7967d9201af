"""Engines that run the per-block fit over all features."""

from manylm.engine.inmemory import default_block_rows, fit_in_blocks, row_blocks

__all__ = ["default_block_rows", "fit_in_blocks", "row_blocks"]
