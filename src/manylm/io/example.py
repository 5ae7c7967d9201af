"""The example data set shipped with manylm: bladderbatch (22,283 probe sets x 57 samples)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["example_paths"]

EXPRESSION_FILE = "bladderbatch_expression.parquet"
SAMPLES_FILE = "bladderbatch_samples.tsv"


def example_paths() -> tuple[Path, Path]:
    """Paths of the bundled example expression matrix and sample sheet.

    The data are the Bioconductor bladderbatch set (Dyrskjot et al. 2004, GEO GSE3167): RMA
    log2 expression of 22,283 probe sets in 57 bladder samples processed in 5 batches; see
    ``manylm/data/README.md``.

    Returns
    -------
    expression : pathlib.Path
        Parquet file, features x samples (float32 values, first column ``feature``); read it
        with :func:`manylm.io.read_matrix` (float64 by default).
    samples : pathlib.Path
        Tab-separated sample sheet with columns ``sample``, ``outcome``, ``batch``, ``cancer``;
        read it with :func:`manylm.io.read_sample_sheet`.

    Raises
    ------
    FileNotFoundError
        If the data files are missing from the installation.
    """
    data = files("manylm") / "data"
    paths = []
    for name in (EXPRESSION_FILE, SAMPLES_FILE):
        resource = data / name
        path = Path(str(resource))
        if not resource.is_file() or not path.is_file():
            raise FileNotFoundError(
                f"manylm's example data file {name!r} is missing from the installation "
                f"(looked for {path}); reinstall manylm"
            )
        paths.append(path)
    return paths[0], paths[1]
