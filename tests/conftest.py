"""Test-wide fixtures."""

from __future__ import annotations

import warnings

import pytest


@pytest.fixture(autouse=True)
def _quiet_manylm_warnings():
    """Warnings are asserted where they matter; elsewhere they are expected noise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        yield
