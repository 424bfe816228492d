"""The typed drift summary writes the summary.json the job has always written: same keys, same
values, and (in MLflow's copy, which keeps insertion order) the same order."""

from __future__ import annotations

import json

from monitoring.summary import (
    AlertOutcome,
    ComparedSummary,
    Comparison,
    ReferenceRows,
    RetrainOutcome,
    RunLink,
    SkippedSummary,
    WindowFacts,
    describe,
)

WINDOW = WindowFacts(
    model="digits",
    date="2026-11-19",
    generated_at="2026-11-20T06:00:00+00:00",
    predictions="s3://predictions/digits/date=2026-11-19",
    files=2,
    rows_in_window=120,
    model_versions={"3": 100, "2": 20},
)
RUN = RunLink(run_id="abc", url="http://tracking:5000/#/experiments/7/runs/abc")
SIGNALS = {
    "image statistics": {"p_value": 0.001, "level": 0.0125, "rejected": True, "deciding_column": "brightness_mean"},
    "softmax": {"skipped": "no softmax columns in the log"},
}
FEATURES = {"brightness_mean": {"drifted": True, "method": "ks"}, "prediction": {"drifted": False, "method": "chi2"}}
COMPARISON = Comparison(
    note="the window mixes model versions {'3': 100, '2': 20}: compared the majority version v3 (100 of 120 rows)",
    dataset_drift=True,
    deciding_signals=("image statistics",),
    significance_level=0.05,
    signals=SIGNALS,
    drifted_share=0.5,
    drifted_features=("brightness_mean",),
    model_version="3",
    rows_compared=100,
    rows_repeated=3,
    rows_of_version=100,
    reference_rows=ReferenceRows(training=1437, validation=360),
    reference_source="image statistics: training table; predicted class, confidence: validation predictions",
    reference_dataset="digits v1",
    sample_size=20000,
    features=FEATURES,
)
SENT = AlertOutcome(sent=True, kind="drift", channels=("webhook",), text="[drift] digits v3 2026-11-19: ...")
SUBMITTED = RetrainOutcome(submitted=True, outcome="KFP run 42 on kfp (experiment drift)")


def _compared(report: str) -> ComparedSummary:
    return ComparedSummary(
        window=WINDOW, comparison=COMPARISON, run=RUN, report=report, report_link=report, alert=SENT, retrain=SUBMITTED
    )


def test_a_compared_day_writes_the_keys_values_and_order_it_always_had() -> None:
    summary = _compared("s3://reports/digits/date=2026-11-19/report.html")
    expected = {
        "model": "digits",
        "date": "2026-11-19",
        "generated_at": "2026-11-20T06:00:00+00:00",
        "predictions": "s3://predictions/digits/date=2026-11-19",
        "files": 2,
        "rows_in_window": 120,
        "model_versions": {"3": 100, "2": 20},
        "note": COMPARISON.note,
        "status": "drift",
        "dataset_drift": True,
        "deciding_signals": ["image statistics"],
        "significance_level": 0.05,
        "signals": SIGNALS,
        "drifted_share": 0.5,
        "drifted_features": ["brightness_mean"],
        "model_version": "3",
        "rows_compared": 100,
        "rows_repeated": 3,
        "rows_of_version": 100,
        "reference_rows": {"training": 1437, "validation": 360},
        "reference_source": COMPARISON.reference_source,
        "reference_dataset": "digits v1",
        "sample_size": 20000,
        "features": FEATURES,
        "mlflow_run_id": "abc",
        "mlflow_run_url": RUN.url,
        "report": "s3://reports/digits/date=2026-11-19/report.html",
        "report_link": "s3://reports/digits/date=2026-11-19/report.html",
        "alert": {"sent": True, "kind": "drift", "channels": ["webhook"], "text": SENT.text},
        "retrain": {"submitted": True, "outcome": SUBMITTED.outcome},
    }
    assert list(summary.as_dict().items()) == list(expected.items())
    assert summary.to_json() == (json.dumps(expected, indent=2, sort_keys=True) + "\n").encode()
    written = summary.written_to("s3://reports/digits/date=2026-11-19/summary.json")
    assert list(written.as_dict().items()) == [*expected.items(), ("summary", written.summary)]
    assert (summary.status, written.status, summary.dataset_drift) == ("drift", "drift", True)


def test_a_day_without_traffic_is_skipped_not_no_drift() -> None:
    alert = AlertOutcome(sent=False, kind="skipped", reason="no channel configured")
    summary = SkippedSummary(window=WINDOW, run=RunLink(run_id="abc", url=None), alert=alert).written_to("/r/s.json")
    assert list(summary.as_dict().items())[7:] == [
        ("status", "skipped"),
        ("reason", "skipped: no traffic"),
        ("dataset_drift", None),
        ("rows_compared", 0),
        ("mlflow_run_id", "abc"),
        ("mlflow_run_url", None),
        ("alert", {"sent": False, "kind": "skipped", "reason": "no channel configured"}),
        ("summary", "/r/s.json"),
    ]
    assert json.loads(summary.to_json())["summary"] == "/r/s.json"
    assert (summary.status, summary.dataset_drift) == ("skipped", None)


def test_each_outcome_names_only_what_applies_to_it() -> None:
    assert AlertOutcome(sent=False, reason="no dataset drift").as_dict() == {
        "sent": False,
        "reason": "no dataset drift",
    }
    cooldown = AlertOutcome(sent=False, kind="drift", reason="cooldown", suppressed_until="2026-11-21T06:00:00+00:00")
    assert list(cooldown.as_dict()) == ["sent", "kind", "reason", "suppressed_until"]
    assert RetrainOutcome(submitted=False, reason="cooldown", suppressed_until="t").as_dict() == {
        "submitted": False,
        "reason": "cooldown",
        "suppressed_until": "t",
    }
    assert SUBMITTED.as_dict() == {"submitted": True, "outcome": SUBMITTED.outcome}


def test_the_console_text_states_the_verdict_each_family_and_where_things_went() -> None:
    compared = _compared("/r/report.html").written_to("/r/summary.json")
    assert describe(compared).splitlines() == [
        "digits v3 2026-11-19: DATASET DRIFT (decided by: image statistics; 1 of 2 features drifted; "
        "100 of 120 rows compared)",
        "  image statistics: p 0.001 vs level 0.0125 REJECTED (brightness_mean)",
        "  softmax: skipped (no softmax columns in the log)",
        f"note: {COMPARISON.note}",
        "report: /r/report.html",
        "alert: sent via webhook",
        f"retrain: {SUBMITTED.outcome}",
        "summary: /r/summary.json",
    ]
    skipped = SkippedSummary(window=WINDOW, run=RUN, alert=AlertOutcome(sent=False, kind="skipped", reason="cooldown"))
    assert describe(skipped.written_to("/r/s.json")).splitlines() == [
        "digits 2026-11-19: skipped: no traffic",
        "alert: cooldown",
        "summary: /r/s.json",
    ]
