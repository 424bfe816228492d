"""Every command fails the same way: `error: ...` lines on stderr and a status (cli/errors.py)."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from cli.errors import INTERRUPTED_EXIT_CODE, RUN_FAILED_EXIT_CODE, USAGE_ERROR_EXIT_CODE, fail
from cli.main import app


def test_fail_prints_each_line_on_stderr_and_exits_with_the_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as raised:
        fail("first problem", "second problem", code=RUN_FAILED_EXIT_CODE)
    assert raised.value.exit_code == RUN_FAILED_EXIT_CODE
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "error: first problem\nerror: second problem\n")
    with pytest.raises(typer.Exit) as raised:
        fail("stopped", code=INTERRUPTED_EXIT_CODE, label="interrupted")
    assert (raised.value.exit_code, capsys.readouterr().err) == (130, "interrupted: stopped\n")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["local", "up", "--epochs", "0"], "error: --epochs must be >= 1, got 0"),
        (["local", "up", "--model", "no-such-model"], "error: unknown model 'no-such-model'"),
        (["pipeline", "run", "digits"], "error: choose exactly one of --local or --host URL"),
        (["data", "list", "no-such-dataset"], "error: unknown dataset 'no-such-dataset'"),
    ],
)
def test_commands_fail_through_it_with_one_line_and_status_2(arguments: list[str], message: str) -> None:
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == USAGE_ERROR_EXIT_CODE, result.output
    assert result.output.startswith(message) and len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output
