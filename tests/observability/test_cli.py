"""`mlops observability rules`: writes the catalogue's rules file, or one model's."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from cli.main import app
from observability.rules import catalogue_rules
from workloads import catalogue


def test_writes_every_model_by_default(tmp_path: Path) -> None:
    out = tmp_path / "alerts" / "rules.yml"
    result = CliRunner().invoke(app, ["observability", "rules", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(out.read_text()) == catalogue_rules(catalogue.CATALOGUE.values())
    assert f"{len(catalogue.names())} group(s)" in result.output


def test_one_model_and_a_namespace(tmp_path: Path) -> None:
    out = tmp_path / "rules.yml"
    arguments = ["observability", "rules", "--out", str(out), "--model", "digits", "--namespace", "models"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(out.read_text()) == catalogue_rules([catalogue.get("digits")], "models")


def test_an_unknown_model_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["observability", "rules", "--out", str(tmp_path / "r.yml"), "--model", "nope"])
    assert result.exit_code == 2
    assert "unknown model 'nope'" in result.output
    assert not (tmp_path / "r.yml").exists()
