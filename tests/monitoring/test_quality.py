"""The quality job's join, metrics, verdicts and alerts on small logs written by the real writers.

No tracking server here: validation accuracy comes from a dict (`test_quality_job.py` reads it from
a registered version)."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from monitoring import alerts
from monitoring.quality_job import alert_on, measure_quality
from monitoring.quality_metrics import wilson_interval
from monitoring.quality_report import DEGRADED, OK, TOO_FEW_LABELS, QualitySummary
from monitoring.quality_settings import QualitySettings, QualityVariables
from monitoring.settings import DriftVariables, SettingsError
from monitoring.store import Store
from monitoring.webhook_receiver import WebhookReceiver
from tests.monitoring.quality_logs import MODEL, answers, log_request, send_labels

DAY = date(2026, 11, 19)
NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path) -> QualitySettings:
    return QualitySettings(
        predictions_store=str(tmp_path / "predictions"),
        labels_store=str(tmp_path / "labels"),
        reports_store=str(tmp_path / "reports"),
    )


def _paths(settings: QualitySettings) -> tuple[Path, Path]:
    return Path(settings.predictions_store), Path(settings.labels_store)


def _measure(settings: QualitySettings, validation: dict[str, float], day: date = DAY, now: datetime = NOW):
    return measure_quality(MODEL, day, now, settings, validation.get)


def _at(day: date, hour: int = 15) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def test_a_label_received_three_days_late_counts_for_its_predictions_day(settings: QualitySettings) -> None:
    predictions, labels = _paths(settings)
    served = DAY - timedelta(days=3)
    predicted, truth = answers(correct=2, wrong=1)
    request = log_request(predictions, served, predicted, "3")
    log_request(predictions, DAY, ["1", "2"], "3")  # a later day with predictions and no labels
    send_labels(labels, request, truth, received=_at(DAY))
    send_labels(labels, "f" * 32, ["4"], received=_at(DAY))  # its prediction is not in the log (yet)

    before = _measure(settings, {"3": 0.9}, day=served, now=_at(served, 18))
    # The window of the prediction's own day, measured once the label is in (the job reads labels up to now).
    rerun = _measure(settings, {"3": 0.9}, day=served, now=_at(DAY, 18))
    after = _measure(settings, {"3": 0.9})

    assert [(row.day, row.labelled) for row in before.rows] == [(served.isoformat(), 0)]
    assert before.rows[0].reason == "too few labels (0 of 30)"
    assert [(row.day, row.labelled, row.correct) for row in rerun.rows] == [(served.isoformat(), 3, 2)]
    by_day = {row.day: row for row in after.rows}
    assert by_day[served.isoformat()].labelled == 3 and by_day[served.isoformat()].correct == 2
    assert by_day[served.isoformat()].accuracy == pytest.approx(2 / 3)
    assert by_day[DAY.isoformat()].labelled == 0 and by_day[DAY.isoformat()].predictions == 2
    assert (after.labels, after.matched, after.unmatched) == (4, 3, 1)
    assert after.first_day == (DAY - timedelta(days=13)).isoformat()


def test_a_label_beyond_the_lookback_window_is_unmatched_and_kept(settings: QualitySettings) -> None:
    predictions, labels = _paths(settings)
    old = DAY - timedelta(days=14)  # the window is DAY-13 .. DAY
    request = log_request(predictions, old, ["5"], "1")
    send_labels(labels, request, ["5"], received=_at(DAY))

    summary = _measure(settings, {"1": 0.9})

    assert (summary.predictions, summary.labels, summary.matched, summary.unmatched) == (0, 1, 0, 1)
    assert list(labels.rglob("*.parquet")), "the job deletes nothing"
    longer = QualitySettings(**{**settings.model_dump(), "lookback_days": 15})
    assert _measure(longer, {"1": 0.9}).matched == 1


def test_a_corrected_label_changes_the_measured_accuracy(settings: QualitySettings) -> None:
    predictions, labels = _paths(settings)
    request = log_request(predictions, DAY, ["1", "2", "3", "4"], "2")
    send_labels(labels, request, ["1", "2", "3", "9"], received=_at(DAY, 13))
    first = _measure(settings, {"2": 0.9})
    send_labels(labels, request, ["1", "2", "3", "9"], received=_at(DAY, 14))  # the same labels again
    repeated = _measure(settings, {"2": 0.9})
    send_labels(labels, request, ["1", "2", "3", "4"], received=_at(DAY, 15))  # image 3 corrected
    corrected = _measure(settings, {"2": 0.9})

    assert first.rows[0].accuracy == pytest.approx(0.75) and first.labels == 4
    assert repeated.rows[0].accuracy == pytest.approx(0.75) and repeated.labels == 4
    assert corrected.rows[0].accuracy == pytest.approx(1.0) and corrected.rows[0].labelled == 4
    assert corrected.rows[0].macro_f1 == pytest.approx(1.0) and first.rows[0].macro_f1 < 1.0


def test_zero_labels_say_too_few_and_send_no_alert(settings: QualitySettings, tmp_path: Path) -> None:
    predictions, _ = _paths(settings)
    log_request(predictions, DAY, ["1"] * 50, "4")

    summary = _measure(settings, {"4": 0.98})

    assert summary.status == TOO_FEW_LABELS
    assert summary.reason == "too few labels (at most 0 of 30 on any day and version)"
    (row,) = summary.rows
    assert (row.verdict, row.reason, row.accuracy, row.interval_high) == (
        TOO_FEW_LABELS,
        "too few labels (0 of 30)",
        None,
        None,
    )
    with WebhookReceiver() as receiver:
        sent = _alert(summary, settings, receiver, NOW)
        assert receiver.messages == []
    assert sent == {"sent": False, "kind": alerts.QUALITY, "reason": summary.reason}
    assert "ok" not in json.dumps(sent)


def test_a_version_swap_in_the_middle_of_a_day_gives_one_row_per_version(settings: QualitySettings) -> None:
    predictions, labels = _paths(settings)
    morning = log_request(predictions, DAY, *_served(correct=30, wrong=10, version="5"))
    # The request during the swap: its first images served by v5, the rest by v6.
    predicted, truth = answers(correct=4, wrong=0)
    swap = log_request(predictions, DAY, predicted, ["5", "5", "6", "6"])
    evening = log_request(predictions, DAY, *_served(correct=36, wrong=0, version="6"))
    send_labels(labels, morning, answers(30, 10)[1], received=_at(DAY, 20))
    send_labels(labels, swap, truth, received=_at(DAY, 20))
    send_labels(labels, evening, answers(36, 0)[1], received=_at(DAY, 20))

    summary = _measure(settings, {"5": 0.9, "6": 0.95})

    rows = {row.model_version: row for row in summary.rows}
    assert [row.day for row in summary.rows] == [DAY.isoformat()] * 2
    assert (rows["5"].predictions, rows["5"].labelled, rows["5"].correct) == (42, 42, 32)
    assert (rows["6"].predictions, rows["6"].labelled, rows["6"].correct) == (38, 38, 38)
    assert (rows["5"].validation_accuracy, rows["6"].validation_accuracy) == (0.9, 0.95)
    assert rows["5"].verdict == DEGRADED and rows["6"].verdict == OK
    assert summary.status == DEGRADED and summary.verdicts == {DEGRADED: 1, OK: 1}


def _served(correct: int, wrong: int, version: str) -> tuple[list[str], str]:
    return answers(correct, wrong)[0], version


def test_the_wilson_interval_and_its_confidence_level() -> None:
    def wilson(k: int, n: int, z: float) -> tuple[float, float]:  # the textbook formula, for comparison
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        return centre - half, centre + half

    assert wilson_interval(30, 50, 0.95) == pytest.approx(wilson(30, 50, 1.959964), abs=1e-6)
    assert wilson_interval(30, 50, 0.90) == pytest.approx(wilson(30, 50, 1.644854), abs=1e-6)
    low, high = wilson_interval(50, 50, 0.95)
    assert high == pytest.approx(1.0) and 0.9 < low < 1.0  # inside [0, 1], unlike the normal approximation


def test_sixty_percent_against_ninety_eight_alerts_once_per_cooldown(settings: QualitySettings) -> None:
    predictions, labels = _paths(settings)
    predicted, truth = answers(correct=30, wrong=20)
    request = log_request(predictions, DAY, predicted, "7")
    send_labels(labels, request, truth, received=_at(DAY))
    summary = _measure(settings, {"7": 0.98})
    (row,) = summary.rows
    state = alerts.CooldownState(Store(settings.reports_store), MODEL)
    state.record(alerts.DRIFT, NOW)  # a drift alert just went out: its cooldown is not the quality alert's

    with WebhookReceiver() as receiver:
        first = _alert(summary, settings, receiver, NOW)
        again = _alert(summary, settings, receiver, NOW + timedelta(hours=23))
        later = _alert(summary, settings, receiver, NOW + timedelta(hours=25))
        texts = receiver.texts()

    assert row.verdict == DEGRADED and row.accuracy == pytest.approx(0.6)
    assert row.interval_high is not None and row.interval_high < 0.98 - 0.02
    assert first["sent"] is True and first["kind"] == alerts.QUALITY
    assert again["reason"] == "cooldown" and again["suppressed_until"] == (NOW + timedelta(hours=24)).isoformat()
    assert later["sent"] is True and len(texts) == 2
    assert texts[0].startswith(f"[quality] {MODEL} v7 {DAY.isoformat()}: measured accuracy below validation accuracy")
    assert "accuracy 0.600" in texts[0] and "validation accuracy 0.980" in texts[0]
    state_file = json.loads((Path(settings.reports_store) / MODEL / "alert-state.json").read_text(encoding="utf-8"))
    assert set(state_file) == {alerts.DRIFT, alerts.QUALITY}


@pytest.mark.parametrize(("correct", "wrong", "verdict"), [(39, 1, OK), (7, 1, TOO_FEW_LABELS)])
def test_near_validation_accuracy_does_not_alert(
    settings: QualitySettings, correct: int, wrong: int, verdict: str
) -> None:
    predictions, labels = _paths(settings)
    predicted, truth = answers(correct, wrong)
    request = log_request(predictions, DAY, predicted, "8")
    send_labels(labels, request, truth, received=_at(DAY))

    summary = _measure(settings, {"8": 0.98})

    assert summary.rows[0].verdict == verdict and summary.status == verdict
    with WebhookReceiver() as receiver:
        sent = _alert(summary, settings, receiver, NOW)
        assert receiver.messages == []
    assert sent["sent"] is False


def test_a_version_the_registry_does_not_know_is_not_judged(settings: QualitySettings) -> None:
    predictions, labels = _paths(settings)
    predicted, truth = answers(correct=10, wrong=30)
    request = log_request(predictions, DAY, predicted, "9")
    send_labels(labels, request, truth, received=_at(DAY))

    summary = _measure(settings, {})

    assert summary.rows[0].verdict == "no_validation_accuracy" and summary.status == "no_validation_accuracy"
    assert summary.rows[0].accuracy == pytest.approx(0.25)


def test_an_image_logged_twice_counts_once(settings: QualitySettings) -> None:
    predictions, labels = _paths(settings)
    request = log_request(predictions, DAY, ["1", "2"], "1")
    # The same rows again: what a flush that spans midnight leaves when a later day's write is retried.
    (written,) = (predictions / MODEL / f"date={DAY.isoformat()}").glob("*.parquet")
    written.with_name(f"copy-{written.name}").write_bytes(written.read_bytes())
    send_labels(labels, request, ["1", "3"], received=_at(DAY))

    summary = _measure(settings, {"1": 0.9})

    assert summary.matched == 2 and summary.rows[0].labelled == 2 and summary.rows[0].correct == 1


def test_the_settings_read_the_drift_jobs_shared_variables_and_their_own() -> None:
    settings = QualitySettings.from_environment(
        {
            DriftVariables.REPORTS_STORE: "s3://reports",
            DriftVariables.WEBHOOK_URL: "http://hooks.example/x",
            DriftVariables.COOLDOWN_HOURS: "6",
            QualityVariables.LABELS_STORE: "s3://labels",
            QualityVariables.LOOKBACK_DAYS: "7",
            QualityVariables.MIN_LABELS: "100",
            QualityVariables.MARGIN: "0.05",
            DriftVariables.P_VALUE: "not read here",
        }
    )

    assert (settings.reports_store, settings.webhook_url, settings.cooldown_hours) == (
        "s3://reports",
        "http://hooks.example/x",
        6,
    )
    assert (settings.labels_store, settings.lookback_days, settings.min_labels, settings.margin) == (
        "s3://labels",
        7,
        100,
        0.05,
    )
    assert QualitySettings.from_environment({}).lookback_days == 14
    with pytest.raises(SettingsError, match=r"^MLOPS_QUALITY_LOOKBACK_DAYS='0': expected an integer in \[1, 366\]$"):
        QualitySettings.from_environment({QualityVariables.LOOKBACK_DAYS: "0"})


def _alert(summary: QualitySummary, settings: QualitySettings, receiver: WebhookReceiver, now: datetime) -> dict:
    configured = QualitySettings(**{**settings.model_dump(), "webhook_url": receiver.url})
    state = alerts.CooldownState(Store(settings.reports_store), MODEL)
    errors: list[str] = []
    sent = alert_on(summary, configured, state, now, "http://report", errors)
    assert errors == []
    return sent


def test_each_row_gets_a_label_free_estimate_beside_its_measurement(settings: QualitySettings) -> None:
    """Every (day, version) is estimated from all its predictions (labelled or not); the verdict stays on
    the measured accuracy: a degraded row stays degraded however good its estimate looks."""
    from monitoring.performance_estimate import Calibration

    predictions, labels = _paths(settings)
    predicted, truth = answers(correct=0, wrong=40)
    labelled = log_request(predictions, DAY, predicted, "3")  # every image at confidence 0.9, all wrong
    send_labels(labels, labelled, truth, received=_at(DAY))
    log_request(predictions, DAY - timedelta(days=1), ["1", "2", "3"], "3")  # nobody labelled this day
    log_request(predictions, DAY, ["1"], "4")
    as_reported = Calibration((None,) * 10)  # the softmax taken as calibrated: the estimate is its mean top score
    calibrations = {"3": as_reported, "4": "no calibration for v4: no validation predictions"}

    summary = measure_quality(MODEL, DAY, NOW, settings, {"3": 0.95, "4": 0.95}.get, calibrations.__getitem__)

    rows = {(row.day, row.model_version): row for row in summary.rows}
    measured = rows[(DAY.isoformat(), "3")]
    assert measured.verdict == DEGRADED and measured.accuracy == 0.0
    assert measured.estimated_accuracy == pytest.approx(0.9) and measured.estimated_standard_error == pytest.approx(
        math.sqrt(40 * 0.9 * 0.1) / 40
    )
    unlabelled = rows[((DAY - timedelta(days=1)).isoformat(), "3")]
    assert unlabelled.verdict == TOO_FEW_LABELS and unlabelled.estimated_accuracy == pytest.approx(0.9)
    assert "CBPE over 3 predictions" in unlabelled.estimate_note
    other = rows[(DAY.isoformat(), "4")]
    assert other.estimated_accuracy is None and other.estimate_note.startswith("no calibration for v4")
    assert json.loads(summary.to_json())["rows"][0]["estimated_accuracy"] == pytest.approx(0.9)
    assert "drift job flagged" not in measured.estimate_note


def test_the_estimate_of_a_drifted_day_says_it_may_be_too_high(settings: QualitySettings) -> None:
    from monitoring.performance_estimate import Calibration

    predictions, _ = _paths(settings)
    log_request(predictions, DAY, ["1", "2"], "3")
    folder = Path(settings.reports_store) / MODEL / f"date={DAY}"
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({"dataset_drift": True, "drifted_share": 0.9}), encoding="utf-8")

    summary = measure_quality(MODEL, DAY, NOW, settings, {"3": 0.95}.get, {"3": Calibration((None,) * 10)}.__getitem__)

    (row,) = summary.rows
    assert row.estimated_accuracy == pytest.approx(0.9) and "the drift job flagged this day" in row.estimate_note


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_macro_f1_is_scikit_learns(seed: int) -> None:
    """Random labels and predictions over a few classes, some predicted never labelled and the reverse."""
    import numpy as np
    import pandas as pd
    from sklearn.metrics import f1_score

    from monitoring.quality_metrics import macro_f1

    generator = np.random.default_rng(seed)
    labels = pd.Series(generator.choice(["0", "1", "2", "3"], size=200))
    predicted = pd.Series(np.where(generator.random(200) < 0.7, labels, generator.choice(["1", "2", "7"], size=200)))
    expected = f1_score(labels, predicted, average="macro", zero_division=0)  # pyright: ignore[reportArgumentType]
    assert macro_f1(labels, predicted) == pytest.approx(expected, abs=1e-12)
