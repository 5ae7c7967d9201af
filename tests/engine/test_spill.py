"""The per-feature stores: the same values whether kept in memory or spilled to files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from manylm.engine.spill import FeatureStore, IdStore, SpillDirectory


@pytest.mark.parametrize("spilled", [False, True])
def test_fields_round_trip(tmp_path: Path, spilled: bool) -> None:
    store = FeatureStore(1000, tmp_path if spilled else None)
    store.add("vector")
    store.add("matrix", 3)
    store.add("column", 1)
    rng = np.random.default_rng(0)
    vector, matrix = rng.normal(size=1000), rng.normal(size=(1000, 3))
    for start in range(0, 1000, 300):
        store.write("vector", start, vector[start:start + 300])
        store.write("matrix", start, matrix[start:start + 300])
        store.write("column", start, matrix[start:start + 300, :1])
    np.testing.assert_array_equal(store.read_all("vector"), vector)
    np.testing.assert_array_equal(store.read("matrix", 250, 700), matrix[250:700])
    assert store.read("column", 0, 10).shape == (10, 1)
    rows = rng.permutation(1000)[:400]
    np.testing.assert_array_equal(store.gather("vector", rows), vector[rows])
    store.add("permuted")
    store.write("permuted", 0, vector)
    order = rng.permutation(1000)
    store.permute("permuted", order, np.empty(1000))  # rewritten in that order
    np.testing.assert_array_equal(store.read_all("permuted"), vector[order])
    store.permute("column", order, np.empty(1000))  # a matrix of one column: the same
    np.testing.assert_array_equal(store.read_all("column"), matrix[order, :1])
    with pytest.raises(ValueError, match="columns"):
        store.permute("matrix", order, np.empty(1000))
    np.testing.assert_array_equal(store.gather("matrix", rows), matrix[rows])
    store.close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("spilled", [False, True])
def test_ids_round_trip(tmp_path: Path, spilled: bool) -> None:
    ids = [f"feature-{i}" * (i % 3) for i in range(500)]  # empty strings too
    ids[17] = 'a "quoted", tabbed\tname'
    store = IdStore(500, tmp_path if spilled else None)
    for start in range(0, 500, 128):
        store.append(start, np.array(ids[start:start + 128], dtype=object))
    assert store.read(100, 300).to_pylist() == ids[100:300]
    rows = np.random.default_rng(1).permutation(500)
    assert store.gather(rows).to_pylist() == [ids[r] for r in rows]
    assert store.special == {'"', ",", "\t"}
    with pytest.raises(RuntimeError, match="out of order"):
        store.append(0, pa.array(["x"]))
    store.close()


def test_spill_directory_is_removed_even_on_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError), SpillDirectory(tmp_path) as directory:
        assert directory.path is not None and directory.path.parent == tmp_path
        (directory.path / "data").write_text("x")
        raise ValueError
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("spilled", [False, True])
def test_constant_field_is_one_value(tmp_path: Path, spilled: bool) -> None:
    """A field made constant reads as its value broadcast (stride 0) and frees its rows."""
    store = FeatureStore(1000, tmp_path if spilled else None)
    store.add("df")
    store.write("df", 0, np.full(1000, 10.0))
    store.set_constant("df", 10.0)
    part = store.read("df", 100, 350)
    assert part.shape == (250,) and part.strides == (0,) and not part.flags.writeable
    np.testing.assert_array_equal(store.read_all("df"), np.full(1000, 10.0))
    np.testing.assert_array_equal(store.gather("df", np.array([5, 2, 999])), [10.0] * 3)
    assert list(tmp_path.iterdir()) == []  # the spilled rows are gone
    with pytest.raises(RuntimeError, match="constant"):
        store.write("df", 0, np.ones(3))
    store.close()


@pytest.mark.parametrize("spilled", [False, True])
def test_a_field_adopted_from_another_store_moves_without_a_copy(tmp_path: Path,
                                                                 spilled: bool) -> None:
    """A one-column field of the fit's store becomes a field of the table's store (its file
    renamed); constant fields stay constant; the old store no longer has them."""
    directory = tmp_path if spilled else None
    fit = FeatureStore(500, directory, prefix="fit.")
    table = FeatureStore(500, directory, prefix="table.")
    values = np.random.default_rng(5).normal(size=(500, 1))
    fit.add("coefficients", 1)
    fit.write("coefficients", 0, values)
    fit.add("df")
    fit.set_constant("df", 7.0)
    table.adopt("estimate", fit, "coefficients")
    table.adopt("df", fit, "df")
    np.testing.assert_array_equal(table.read_all("estimate"), values[:, 0])
    assert table.read("df", 0, 3).strides == (0,)
    with pytest.raises(KeyError):
        fit.read_all("coefficients")
    fit.close()
    if spilled:  # the fit's store removed its files, but the one now the table's
        assert [p.name for p in tmp_path.iterdir()] == ["table.estimate.f8"]
    table.close()
    assert list(tmp_path.iterdir()) == []
