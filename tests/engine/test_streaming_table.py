"""The table writer's shortcuts give the bytes of the plain way.

A spilled table sorted in place (sorted by p: made late, from the fit's fields in output
order) and one sorted through bucket files, a column formatted once per run of equal values
and one formatted value by value, the byte scan for characters that need quoting and Arrow's
own search: each pair must agree exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from manylm.engine import fit_streaming, late_table, streaming_table
from manylm.engine.spill import IdStore, _any_special_byte

FORMULA = "~ group"


@pytest.fixture(scope="module")
def data() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(3)
    samples = pd.DataFrame({"group": np.repeat(["A", "B"], 5)},
                           index=[f"S{i}" for i in range(10)])
    values = rng.normal(8, 1, (3000, 10))
    values[rng.random(values.shape) < 0.05] = np.nan
    values[11] = np.nan  # no t statistic: NaN p-value, sorted last
    ids = [f"feature-{i}" + "x" * (i % 5) for i in range(3000)]
    return {"samples": samples,
            "expression": pd.DataFrame(values, index=ids, columns=samples.index)}


@pytest.mark.parametrize("sort_by", ["p", "t", "B"])
def test_sorted_in_place_is_the_bucket_sort(data, tmp_path: Path, monkeypatch,
                                            sort_by: str) -> None:
    def run(name: str) -> bytes:
        fit_streaming(data["expression"], FORMULA, samples=data["samples"], coef="group[B]",
                      sort_by=sort_by, out=tmp_path / name, block_rows=256, spill=True)
        return (tmp_path / name).read_bytes()

    calls: list[bool] = []
    real = streaming_table.sortable_in_place

    def sortable(*args: Any) -> bool:
        calls.append(real(*args))
        return calls[-1]

    # sorted by p, the table is made late (from the fit's fields sorted in place)
    for module in (streaming_table, late_table):
        monkeypatch.setattr(module, "sortable_in_place", sortable)
    in_place = run("in_place.tsv")
    assert calls == [True]
    monkeypatch.setattr(streaming_table, "WRITE_BYTES_PER_FEATURE", 0)  # IDs do not fit
    bucketed = run("bucketed.tsv")
    assert calls[1:] == ([False, False] if sort_by == "p" else [False])
    assert in_place == bucketed
    collected = fit_streaming(data["expression"], FORMULA, samples=data["samples"],
                              coef="group[B]", sort_by=sort_by, block_rows=256, spill=True)
    assert collected.table is not None
    monkeypatch.undo()
    again = fit_streaming(data["expression"], FORMULA, samples=data["samples"],
                          coef="group[B]", sort_by=sort_by, block_rows=256, spill=True)
    pd.testing.assert_frame_equal(collected.table, again.table)


def test_special_characters_found_by_bytes(tmp_path: Path) -> None:
    plain = pa.array(["gène-1", "ß", "", None, "x" * 50], type=pa.large_string())
    assert not _any_special_byte(plain)
    for char in ("\t", ",", '"', "\n", "\r"):
        marked = pa.array(["a", f"b{char}c", "d"], type=pa.large_string())
        assert _any_special_byte(marked)
        assert not _any_special_byte(marked.slice(2))  # only the slice's text counts
        assert _any_special_byte(marked.slice(1, 1))
    store = IdStore(4, tmp_path)
    store.append(0, np.array(["a", "b,c"], dtype=object))
    store.append(2, pa.array(["d", 'e"f'], type=pa.large_string()).slice(0, 2))
    assert store.special == {",", '"'}
    assert store.read(0, 4).to_pylist() == ["a", "b,c", "d", 'e"f']
    assert store.nbytes == 5 * 8 + len("ab,cde\"f")  # ASCII: one byte a character
    store.close()


def test_sorting_threads_stay_within_the_reserve() -> None:
    assert streaming_table._sort_threads(1) == 1
    assert streaming_table._sort_threads(2) == 2
    many = streaming_table._sort_threads(64)  # a column and its permuted copy each, and
    assert 16 + 16 * many <= streaming_table.WRITE_BYTES_PER_FEATURE  # the order, adjusted
