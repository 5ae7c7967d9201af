"""File input and output: matrices, sample sheets, result tables and run records.

Readers tell the format from the file suffix, keep IDs as strings and raise
:class:`manylm.errors.InputError` (or a subclass) with a message naming the file, the feature or
sample concerned and what to do. Writers replace their target atomically.
"""

from __future__ import annotations

from manylm.io.atomic import atomic_path
from manylm.io.block_sources import STREAM_SUFFIXES, open_feature_blocks
from manylm.io.convert import CONVERT_SUFFIXES, convert_matrix
from manylm.io.example import example_paths
from manylm.io.feature_blocks import FeatureBlock, FeatureBlockSource
from manylm.io.formats import (
    MATRIX_SUFFIXES,
    SAMPLE_SHEET_SUFFIXES,
    TABLE_SUFFIXES,
    FileFormat,
    detect_format,
)
from manylm.io.matrix import MISSING_VALUES, read_matrix, read_weights
from manylm.io.run_record import file_fingerprint, package_versions, write_run_record
from manylm.io.samples import align_samples, read_sample_sheet
from manylm.io.tables import check_table_path, write_table

__all__ = [
    "CONVERT_SUFFIXES",
    "MATRIX_SUFFIXES",
    "MISSING_VALUES",
    "SAMPLE_SHEET_SUFFIXES",
    "STREAM_SUFFIXES",
    "TABLE_SUFFIXES",
    "FeatureBlock",
    "FeatureBlockSource",
    "FileFormat",
    "align_samples",
    "atomic_path",
    "check_table_path",
    "convert_matrix",
    "detect_format",
    "example_paths",
    "file_fingerprint",
    "open_feature_blocks",
    "package_versions",
    "read_matrix",
    "read_sample_sheet",
    "read_weights",
    "write_run_record",
    "write_table",
]
