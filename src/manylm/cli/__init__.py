"""The ``manylm`` command line: thin wiring of the I/O layer and the Python API."""

from manylm.cli.main import main

__all__ = ["main"]
