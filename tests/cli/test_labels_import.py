"""`mlops labels import`: Label Studio JSON exports (fixture files in label_studio/, written in the
format Label Studio documents — see workloads/labels/label_studio.py) into the labels store."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.errors import USAGE_ERROR_EXIT_CODE
from cli.main import app
from workloads.labels.store import LabelStore

EXPORTS = Path(__file__).with_name("label_studio")
A = "5f0c9a2e7b1d4c3a8e6f00112233aabb"
B = "0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f6"
C = "c0ffee00c0ffee00c0ffee00c0ffee00"
TODAY = date.today()


def run(*arguments: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["labels", "import", *arguments])
    return result.exit_code, result.stdout, result.stderr


def stored(store: Path) -> list[tuple[str, int, str, str]]:
    labels = LabelStore(str(store)).load("digits", TODAY, TODAY)
    return list(zip(labels["request_id"], labels["image_index"], labels["label"], labels["source"], strict=True))


def annotators(store: Path) -> dict[tuple[str, int], str | None]:
    labels = LabelStore(str(store)).load("digits", TODAY, TODAY)
    keys = zip(labels["request_id"], labels["image_index"], strict=True)
    return dict(zip(keys, labels["annotator"], strict=True))


def test_an_export_imports_the_latest_uncancelled_choice_per_task(tmp_path: Path) -> None:
    code, out, err = run("digits", str(EXPORTS / "digits-export.json"), "--store", str(tmp_path))
    assert code == 0, err
    source = "label-studio:digits-export.json"
    assert sorted(stored(tmp_path)) == sorted(
        [
            (A, 0, "3", source),
            (A, 1, "7", source),  # the later of two annotators' answers, though listed first
            (B, 0, "5", source),  # the newest annotation was cancelled: the older one stands
            (C, 1, "0", source),  # the choices region beside a rectangle
        ]
    )
    assert out.splitlines() == [
        f"imported 4 labels for digits from digits-export.json into {tmp_path}",
        "annotators: user:1 (3), user:2 (1)",
        "skipped 1 task: every annotation cancelled",
        "skipped 1 task: latest annotation chose more than one class",
        "skipped 1 task: no annotation",
    ]


def test_each_label_records_who_gave_the_answer(tmp_path: Path) -> None:
    """completed_by as an id (the project's Export button) and as the expanded user object (an export
    snapshot), updated_by naming a later editor, a cancelled newest annotation, no user field at all."""
    assert run("digits", str(EXPORTS / "digits-export.json"), "--store", str(tmp_path))[0] == 0
    by_id = annotators(tmp_path)
    assert by_id[(A, 1)] == "user:2"  # the later of two annotators' answers
    assert by_id[(B, 0)] == "user:1"  # user 2 cancelled the newest annotation: user 1's answer stands

    store = tmp_path / "expanded"
    code, out, err = run("digits", str(EXPORTS / "digits-annotators.json"), "--store", str(store))
    assert code == 0, err
    assert annotators(store) == {
        (A, 0): "ana@example.org",  # the expanded user's email
        (A, 1): "user:5",  # created by Ana, last changed by user 5: user 5's answer
        (A, 2): "user:4",  # expanded, but no email
        (B, 0): "ana@example.org",  # Sam skipped it (cancelled) later: not a label, and Ana's stands
        (B, 1): None,  # the export names nobody: unknown
    }
    assert "annotators: ana@example.org (2), user:5 (1), user:4 (1), unknown (1)" in out
    assert {label for _, _, label, _ in stored(store)} == {"3", "7", "4", "5", "9"}


def test_a_later_import_of_the_same_image_wins(tmp_path: Path) -> None:
    assert run("digits", str(EXPORTS / "digits-export.json"), "--store", str(tmp_path))[0] == 0
    assert run("digits", str(EXPORTS / "digits-corrections.json"), "--store", str(tmp_path))[0] == 0
    labels = {(request, index): (label, source) for request, index, label, source in stored(tmp_path)}
    assert labels[(A, 0)] == ("8", "label-studio:digits-corrections.json")
    assert labels[(A, 1)] == ("7", "label-studio:digits-export.json")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "unknown-class.json",
            "error: unknown-class.json: task 302: unknown class 'cat': the model's classes are 0, 1, 2, 3, 4, 5, 6, "
            "7, 8, 9; nothing was imported",
        ),
        (
            "malformed-index.json",
            "error: malformed-index.json: task 402: `data.index` must be a non-negative integer (the image's "
            "position in its request); nothing was imported",
        ),
    ],
)
def test_a_bad_task_fails_the_whole_file_and_stores_nothing(tmp_path: Path, name: str, message: str) -> None:
    store = tmp_path / "labels"
    code, out, err = run("digits", str(EXPORTS / name), "--store", str(store))
    assert code == USAGE_ERROR_EXIT_CODE
    assert (out, err.strip()) == ("", message)
    assert not store.exists()  # the good task before the bad one was not stored either


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[{", "not a readable JSON file (JSONDecodeError)"),
        ('{"tasks": []}', "not a Label Studio JSON export: expected a list of tasks"),
        ('[{"id": 9, "data": {"index": 0}, "annotations": []}]', None),  # no annotation: skipped, not malformed
        ('[{"id": 9, "data": "x", "annotations": []}]', "task 9: `data` must be an object"),
        (
            '[{"id": 9, "data": {"request_id": "r", "index": 0}, "annotations": [{"result": [{"type": "choices", '
            '"value": {"choices": ["1"]}}]}]}]',
            "task 9: `request_id` must be the 32-hex-digit id",
        ),
        (
            '[{"id": 9, "data": {}, "annotations": [{"updated_at": "yesterday", "result": []}]}]',
            "task 9: annotation time 'yesterday' is not ISO 8601",
        ),
        (
            '[{"id": 9, "data": {}, "annotations": [{"was_cancelled": "no"}]}]',
            "task 9: `was_cancelled` must be true or false",
        ),
        (
            '[{"id": 9, "data": {}, "annotations": [{"result": [{"type": "choices", "value": "1"}]}]}]',
            "task 9: a choices result needs `value.choices`, a list",
        ),
        (
            '[{"id": 9, "data": {"request_id": "5f0c9a2e7b1d4c3a8e6f00112233aabb", "index": 0}, "annotations": '
            '[{"completed_by": "ana", "result": [{"type": "choices", "value": {"choices": ["1"]}}]}]}]',
            "task 9: `completed_by` must be a user id or a user object with an integer `id`",
        ),
    ],
)
def test_malformed_files_get_one_line(tmp_path: Path, content: str, message: str | None) -> None:
    export = tmp_path / "export.json"
    export.write_text(content, encoding="utf-8")
    code, _, err = run("digits", str(export), "--store", str(tmp_path / "labels"))
    if message is None:
        assert code == 0, err
        return
    assert code == USAGE_ERROR_EXIT_CODE
    assert err.startswith(f"error: export.json: {message}") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "labels").exists()


def test_several_choices_tags_need_from_name(tmp_path: Path) -> None:
    export = str(EXPORTS / "two-choices-tags.json")
    code, out, _ = run("digits", export, "--store", str(tmp_path))
    assert code == 0 and "skipped 1 task: latest annotation has several choices results (pass --from-name)" in out
    assert stored(tmp_path) == []
    assert run("digits", export, "--store", str(tmp_path), "--from-name", "second_opinion")[0] == 0
    assert [(index, label) for _, index, label, _ in stored(tmp_path)] == [(3, "9")]


def test_the_store_defaults_to_mlops_labels_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_LABELS_STORE", str(tmp_path / "from-env"))
    assert run("digits", str(EXPORTS / "digits-corrections.json"))[0] == 0
    assert [label for _, _, label, _ in stored(tmp_path / "from-env")] == ["8"]


def test_an_unknown_model_is_one_line(tmp_path: Path) -> None:
    code, _, err = run("no-such-model", str(EXPORTS / "digits-export.json"), "--store", str(tmp_path))
    assert code == USAGE_ERROR_EXIT_CODE and err.startswith("error: unknown model 'no-such-model'")


def test_the_fixture_exports_have_label_studios_documented_shape() -> None:
    """Guards the fixtures themselves: each task has id, data, annotations; each annotation result,
    was_cancelled and timestamps; each classification region type "choices" and value.choices."""
    for path in EXPORTS.glob("*.json"):
        for task in json.loads(path.read_text(encoding="utf-8")):
            assert {"id", "data", "annotations"} <= task.keys()
            for annotation in task["annotations"]:
                assert {"result", "was_cancelled", "created_at", "updated_at"} <= annotation.keys()
                for region in annotation["result"]:
                    assert {"id", "type", "value", "from_name", "to_name"} <= region.keys()
                    if region["type"] == "choices":
                        assert isinstance(region["value"]["choices"], list)


def test_a_relative_store_is_the_callers_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The option and the variable alike: `mlops` makes both absolute against where it was run, once."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run("digits", str(EXPORTS / "digits-export.json"), "--store", "by-option")
    assert code == 0, err
    assert f"into {tmp_path / 'by-option'}" in out and stored(tmp_path / "by-option")
    monkeypatch.setenv("MLOPS_LABELS_STORE", "by-variable")
    code, out, err = run("digits", str(EXPORTS / "digits-export.json"))
    assert code == 0, err
    assert f"into {tmp_path / 'by-variable'}" in out and stored(tmp_path / "by-variable")
