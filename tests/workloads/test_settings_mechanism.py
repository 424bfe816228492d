"""The one settings mechanism every workload uses (workloads/settings.py), on a model of its own and on
the workloads' models: blank means unset, one line per mistake, help and names from the fields."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from pydantic import Field

from monitoring.settings import DriftSettings, DriftVariables
from workloads.serving.settings import ServingSettings, ServingVariables
from workloads.settings import (
    FILE_SUFFIX,
    Count,
    Share,
    Stripped,
    TrackingClientVariables,
    WorkloadSettings,
    variable,
    variable_extra,
)
from workloads.tracking.database_secret import DatabaseSecretSettings, DatabaseVariables
from workloads.tracking.server import TrackingServerConfig, TrackingServerVariables

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


class ExampleError(ValueError):
    pass


class Example(WorkloadSettings):
    error_class = ExampleError

    name: Stripped = Field(validation_alias="EX_NAME", description="a name", examples=["one", "two"])
    count: int = Field(default=3, ge=1, le=10, validation_alias="EX_COUNT", description="how many | at most ten")
    ratio: float = Field(default=0.5, gt=0, validation_alias="EX_RATIO", description="a ratio")
    mode: Literal["a", "b"] = Field(default="a", validation_alias="EX_MODE", description="the mode")
    options: dict[str, Any] = Field(
        default_factory=dict,
        validation_alias="EX_OPTIONS",
        description="options",
        json_schema_extra=variable_extra(expected="a JSON object"),
    )
    token: Annotated[str, Field(min_length=8)] = Field(
        default="default-token",
        validation_alias="EX_TOKEN",
        description="a secret",
        json_schema_extra=variable_extra(expected="at least 8 characters", from_file=True),
    )


def test_values_come_from_the_given_mapping_and_blank_means_unset() -> None:
    example = Example.from_environment({"EX_NAME": "  named ", "EX_COUNT": " ", "EX_RATIO": "", "EX_MODE": "b"})
    assert (example.name, example.count, example.ratio, example.mode) == ("named", 3, 0.5, "b")
    assert Example.from_environment({"EX_NAME": "x", "EX_OPTIONS": '{"epochs": 3}'}).options == {"epochs": 3}


def test_building_a_model_directly_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EX_NAME", "from-the-environment")
    monkeypatch.setenv("EX_COUNT", "9")
    monkeypatch.setenv(DriftVariables.SEED, "7")
    assert (Example(name="x").name, Example(name="x").count) == ("x", 3)
    assert DriftSettings().seed == 0
    assert (Example.from_environment().name, Example.from_environment().count) == ("from-the-environment", 9)


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"EX_NAME": " "}, "EX_NAME is required (e.g. one or two)"),
        ({"EX_COUNT": "many"}, "EX_COUNT='many': expected an integer in [1, 10]"),
        ({"EX_COUNT": "11"}, "EX_COUNT='11': expected an integer in [1, 10]"),
        ({"EX_RATIO": "0"}, "EX_RATIO='0': expected a number > 0"),
        ({"EX_MODE": "c"}, "EX_MODE='c': expected one of a, b"),
        ({"EX_OPTIONS": "{"}, "EX_OPTIONS='{': expected a JSON object"),
        ({"EX_OPTIONS": "[1]"}, "EX_OPTIONS='[1]': expected a JSON object"),
        ({"EX_TOKEN": "short"}, "EX_TOKEN: expected at least 8 characters"),  # a secret is never echoed
    ],
)
def test_a_mistake_is_one_line_naming_the_variable(environment: dict[str, str], message: str) -> None:
    with pytest.raises(ExampleError) as raised:
        Example.from_environment({"EX_NAME": "x", **environment})
    assert str(raised.value) == message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__  # no pydantic report attached


def test_a_file_variant_wins_and_an_unreadable_one_is_named(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-the-mounted-file\n")
    environment = {"EX_NAME": "x", "EX_TOKEN": "from-the-variable", "EX_TOKEN_FILE": str(tmp_path / "token")}
    assert Example.from_environment(environment).token == "from-the-mounted-file"
    with pytest.raises(ExampleError, match=f"^EX_TOKEN_FILE: cannot read {tmp_path / 'absent'}: "):
        Example.from_environment({**environment, "EX_TOKEN_FILE": str(tmp_path / "absent")})
    assert Example.file_variables() == ("EX_TOKEN",)


def test_help_and_table_come_from_the_fields() -> None:
    lines = dict(line.split(maxsplit=1) for line in Example.variables_help().splitlines())
    assert list(lines) == ["EX_NAME", "EX_COUNT", "EX_RATIO", "EX_MODE", "EX_OPTIONS", "EX_TOKEN", "EX_TOKEN_FILE"]
    assert lines["EX_COUNT"] == "how many | at most ten (an integer in [1, 10]; default: 3)"
    assert lines["EX_NAME"] == "a name (required)"
    assert lines["EX_MODE"] == "the mode (one of a, b; default: a)"
    table = Example.variables_table()
    assert "| `EX_COUNT` | `3` | how many \\| at most ten (an integer in [1, 10]) |" in table
    assert "| `EX_NAME` | required | a name |" in table
    assert Example.variables()["EX_MODE"] == ("a", "the mode")


class Declared(WorkloadSettings):
    """The same mechanism through `variable(...)`: help text from docstrings, ranges from the kinds."""

    workers: Count = variable("EX_WORKERS", 2)
    """worker processes, one per
    core"""
    margin: Share = variable("EX_MARGIN", 0.1, from_file=True)
    """how much slack"""


def test_variable_takes_its_help_from_the_docstring_and_its_range_from_the_kind() -> None:
    assert Declared.variables() == {
        "EX_WORKERS": ("2", "worker processes, one per core"),  # a wrapped docstring is one line of help
        "EX_MARGIN": ("0.1", "how much slack"),
        "EX_MARGIN_FILE": ("none", "file holding EX_MARGIN (a mounted Secret); wins over EX_MARGIN"),
    }
    with pytest.raises(ValueError, match=r"^EX_WORKERS='0': expected an integer >= 1$"):
        Declared.from_environment({"EX_WORKERS": "0"})
    with pytest.raises(ValueError, match=r"^EX_MARGIN: expected a number in \[0.0, 1.0\]$"):
        Declared.from_environment({"EX_MARGIN": "2"})


def test_a_variable_without_help_text_is_refused() -> None:
    class Undocumented(WorkloadSettings):
        count: Count = variable("EX_UNDOCUMENTED", 1)

    with pytest.raises(TypeError, match=r"Undocumented\.count has no help text"):
        Undocumented.variables()


@pytest.mark.parametrize(
    ("settings", "variables", "extras"),
    [
        (ServingSettings, [ServingVariables, TrackingClientVariables], set()),
        (DriftSettings, [DriftVariables, TrackingClientVariables], set()),
        (
            TrackingServerConfig,
            [TrackingServerVariables],
            # Not read by the config: set for `mlflow server`, or MLflow's own passed on.
            {"MLFLOW_AUTH_CONFIG_PATH", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "MLFLOW_S3_ENDPOINT_URL"},
        ),
        (DatabaseSecretSettings, [DatabaseVariables], set()),
    ],
)
def test_the_importable_names_are_exactly_the_fields_variables(
    settings: type[WorkloadSettings], variables: list[type], extras: set[str]
) -> None:
    named = {value for namespace in variables for key, value in vars(namespace).items() if key.isupper()}
    documented = {name for name in settings.variables() if not name.endswith(FILE_SUFFIX)}
    assert documented == named - extras
    assert len(documented) >= 4  # not vacuous


def test_importing_the_settings_and_the_infra_pulls_no_workload_library() -> None:
    code = (
        "import sys\n"
        "import workloads.serving.settings, monitoring.settings, workloads.tracking.server\n"
        "import infra.platform, infra.model, infra.model_service, infra.drift_monitor, infra.tracking_server\n"
        "heavy = {'torch', 'mlflow', 'bentoml', 'evidently', 'kfp', 'pandas', 'sklearn', 'pyarrow'}\n"
        "print(sorted(heavy & {name.split('.')[0] for name in sys.modules}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPOSITORY_ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPOSITORY_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.strip() == "[]"
