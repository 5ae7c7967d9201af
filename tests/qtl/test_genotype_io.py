"""Every genotype format gives the same dosages and the same scan (manylm.io.genotypes)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from manylm.errors import InputError
from manylm.io.genotypes import open_genotypes
from manylm.qtl import scan
from reference_data import read_reference


@pytest.fixture(scope="module")
def calls() -> pd.DataFrame:
    """Hard calls (0/1/2, NaN) of the reference variants rs009-rs040 (no continuous dosage)."""
    genotypes = read_reference("qtl/genotypes.tsv")
    return genotypes.loc[[f"rs{i:03d}" for i in range(9, 41)]]


@pytest.fixture(scope="module")
def files(calls: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("genotypes")
    positions = read_reference("qtl/variant_positions.tsv").loc[calls.index]
    paths = {"tsv": folder / "geno.tsv.gz", "parquet": folder / "geno.parquet",
             "bed": folder / "geno.bed", "vcf": folder / "geno.vcf"}
    calls.rename_axis("variant").to_csv(paths["tsv"], sep="\t", na_rep="NA")
    calls.rename_axis("variant").reset_index().to_parquet(paths["parquet"], index=False)
    try:
        from bed_reader import to_bed
    except ImportError:  # the PLINK reader is optional
        del paths["bed"]
    else:
        to_bed(paths["bed"], calls.to_numpy().T.astype(np.float32), properties={
            "iid": list(calls.columns), "sid": list(calls.index),
            "chromosome": positions["chrom"].astype(str).tolist(),
            "bp_position": positions["pos"].to_numpy()})
    header = ["##fileformat=VCFv4.2", '##FORMAT=<ID=GT,Number=1,Type=String,Description="GT">',
              "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(calls.columns)]
    codes = np.array(["0/0", "0/1", "1/1"])
    lines = []
    for (variant, row), (_, where) in zip(calls.iterrows(), positions.iterrows(), strict=True):
        text = np.where(row.isna(), "./.", codes[np.nan_to_num(row.to_numpy()).astype(int)])
        lines.append(f"{where['chrom']}\t{where['pos']}\t{variant}\tA\tG\t.\tPASS\t.\tGT\t"
                     + "\t".join(text))
    paths["vcf"].write_text("\n".join(header + lines) + "\n")
    try:
        from manylm.io.zarr_blocks import ZarrMatrixWriter

        writer = ZarrMatrixWriter(folder / "geno.zarr", list(calls.columns), np.dtype(np.float32),
                                  chunk_rows=8)
        writer.write(np.asarray(calls.index, dtype=object), calls.to_numpy())
        writer.close()
        paths["zarr"] = folder / "geno.zarr"
    except ImportError:  # zarr is optional
        pass
    return paths


@pytest.mark.parametrize("kind", ["tsv", "parquet", "bed", "vcf", "zarr"])
def test_formats_read_the_same_dosages(kind: str, files, calls) -> None:
    if kind not in files or (kind == "vcf" and importlib.util.find_spec("cyvcf2") is None):
        pytest.skip(f"{kind} needs an optional package")
    reader = open_genotypes(files[kind])
    samples = list(calls.columns[::-1])  # another order than the file's
    blocks = list(reader.blocks(5, samples))
    values = np.vstack([b.dosages for b in blocks])
    ids = np.concatenate([b.variant_ids for b in blocks])
    assert list(ids) == list(calls.index)
    np.testing.assert_array_equal(values, calls[samples].to_numpy())
    assert [b.start for b in blocks] == list(range(0, len(calls), 5))
    if kind in ("bed", "vcf"):
        assert reader.has_positions
        assert blocks[0].position is not None and blocks[0].position[0] == 180_000


def test_plink_prefix_and_cis_positions_from_the_bim(files, calls) -> None:
    if "bed" not in files:
        pytest.skip("needs bed-reader")
    phenotypes = read_reference("qtl/phenotypes.tsv")
    covariates = read_reference("qtl/covariates.tsv").T
    gene_positions = read_reference("qtl/phenotype_positions.tsv")
    prefix = str(files["bed"])[:-4]
    from_bed = scan(prefix, phenotypes, covariates, p_threshold=1.0, cis_window=25_000,
                    phenotype_positions=gene_positions)
    from_frame = scan(calls, phenotypes, covariates, p_threshold=1.0, cis_window=25_000,
                      phenotype_positions=gene_positions,
                      variant_positions=read_reference("qtl/variant_positions.tsv"))
    assert from_bed.n_tests == from_frame.n_tests and from_bed.n_tests["cis"] > 0
    a = from_bed.table.set_index(["variant", "phenotype"]).sort_index()
    b = from_frame.table.set_index(["variant", "phenotype"]).sort_index()
    pd.testing.assert_frame_equal(a, b)


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "g.xyz").write_text("x")
    with pytest.raises(InputError, match="cannot tell the genotype format"):
        open_genotypes(tmp_path / "g.xyz")
    with pytest.raises(InputError, match="not found"):
        open_genotypes(tmp_path / "none.bed")


def test_samples_without_genotypes_are_named(files, calls) -> None:
    reader = open_genotypes(files["parquet"])
    with pytest.raises(InputError, match="'X1', 'X2'"):
        next(reader.blocks(5, [*calls.columns[:3], "X1", "X2"]))
