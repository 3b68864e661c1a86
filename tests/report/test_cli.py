"""``poisonguard report``: writes the page and PNG; refuses data that was not scanned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from poisonguard.cli import app
from poisonguard.data import Dataset
from poisonguard.findings import Findings, save_findings


@pytest.fixture
def wine_findings(tabular_scan: tuple[Findings, Dataset], tmp_path: Path) -> tuple[Path, Path]:
    """The tabular scan's findings (JSON) and its data (Parquet), on disk."""
    from poisonguard.data import save_dataset

    findings, ds = tabular_scan
    data = tmp_path / "wine.parquet"
    save_dataset(ds, data)
    path = tmp_path / "findings.json"
    save_findings(findings, path)
    return path, data


def test_report_command_writes_html_and_png(wine_findings: tuple[Path, Path],
                                            tmp_path: Path) -> None:
    findings, data = wine_findings
    out, png = tmp_path / "out" / "report.html", tmp_path / "summary.png"
    result = CliRunner().invoke(app, ["report", str(findings), "--data", str(data),
                                      "--out", str(out), "--png", str(png)])
    assert result.exit_code == 0, result.output
    assert f"Report written to {out}" in result.output
    page = out.read_text(encoding="utf-8")
    assert "color_intensity = " in page and "6 of 178 rows flagged" in page
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_report_without_data_still_works(wine_findings: tuple[Path, Path],
                                         tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", str(wine_findings[0]), "--out", str(out),
                                      "--quiet"])
    assert result.exit_code == 0 and result.output == ""
    assert "made without the data" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("data, message", [
    ("builtin:breast_cancer", "describe 178 rows but the data has 569"),
    ("builtin:wine", "sha256 differs"),  # same size, different values (six rows changed)
])
def test_report_refuses_data_that_was_not_scanned(wine_findings: tuple[Path, Path],
                                                  tmp_path: Path, data: str,
                                                  message: str) -> None:
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", str(wine_findings[0]), "--data", data,
                                      "--out", str(out)])
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_report_rejects_a_file_that_is_not_findings(tmp_path: Path) -> None:
    bad = tmp_path / "f.json"
    bad.write_text(json.dumps({"rows": "nope"}), encoding="utf-8")
    result = CliRunner().invoke(app, ["report", str(bad), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and "not a poisonguard findings file" in result.output


@pytest.mark.parametrize("out, message", [
    ("{tmp}", "--out must be a file path (it is a folder)"),
    ("{tmp}/findings.json/r.html", "findings.json is a file, not a folder"),
])
def test_report_out_must_be_a_writable_file_path(wine_findings: tuple[Path, Path],
                                                 tmp_path: Path, out: str,
                                                 message: str) -> None:
    findings = wine_findings[0]
    before = findings.read_bytes()
    result = CliRunner().invoke(app, ["report", str(findings),
                                      "--out", out.replace("{tmp}", str(tmp_path))])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert findings.read_bytes() == before
    assert not list(tmp_path.glob("*.html"))
