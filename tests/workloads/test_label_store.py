"""The labels store: append-only parquet under `<store>/<model>/date=YYYY-MM-DD/`, on a folder or S3,
and one resolution — the last label received for an image wins — whatever order the files hold."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from tests.services import DUMMY_AWS_ENVIRONMENT, MotoS3Server
from workloads.labels.record import FEEDBACK_SOURCE, LABEL_COLUMNS, LabelRecord, label_studio_source
from workloads.labels.resolve import resolve_labels
from workloads.labels.store import LabelStore, records_frame
from workloads.request_id import new_request_id

MODEL = "digits"
DAY = datetime(2031, 5, 6, 10, 0, tzinfo=UTC)


def label(request_id: str, index: int, value: str, at: datetime, source: str = FEEDBACK_SOURCE) -> LabelRecord:
    return LabelRecord(MODEL, request_id, index, value, source, at)


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[MotoS3Server]:
    server = MotoS3Server.start()
    try:
        server.create_bucket("labels")
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_store(moto_s3: MotoS3Server, monkeypatch: pytest.MonkeyPatch) -> LabelStore:
    for name, value in DUMMY_AWS_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_s3.endpoint_url)
    return LabelStore(f"s3://labels/{new_request_id()}")  # a prefix per test: the bucket is shared


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> LabelStore:
    if request.param == "local":
        return LabelStore(str(tmp_path / "labels"))
    return request.getfixturevalue("s3_store")


def test_records_round_trip_with_their_columns_and_types(store: LabelStore) -> None:
    first, second = new_request_id(), new_request_id()
    records = [label(first, 0, "3", DAY), label(first, 1, "7", DAY), label(second, 0, "1", DAY, "label-studio:x.json")]
    assert len(store.write(records)) == 1
    stored = store.read(MODEL, DAY.date(), DAY.date())
    assert list(stored.columns) == list(LABEL_COLUMNS)
    assert str(stored["image_index"].dtype) == "int64"
    assert str(stored["received_at"].dtype) == "datetime64[us, UTC]"
    pd.testing.assert_frame_equal(stored, records_frame(records))


def test_the_annotator_round_trips_and_an_older_file_reads_as_unknown(store: LabelStore) -> None:
    request_id = new_request_id()
    named = LabelRecord(MODEL, request_id, 0, "3", FEEDBACK_SOURCE, DAY, "ana@example.org")
    store.write([named, label(request_id, 1, "4", DAY)])
    store.write([label(request_id, 2, "5", DAY)])  # no annotator in the whole file
    older = records_frame([label(request_id, 3, "6", DAY)]).drop(columns=["annotator"])
    sink = io.BytesIO()
    older.to_parquet(sink, index=False)  # the format before `annotator` existed
    store.objects.write(f"{MODEL}/date=2031-05-06/000000000000-1-older.parquet", sink.getvalue())
    loaded = store.load(MODEL, DAY.date(), DAY.date())
    assert list(zip(loaded["image_index"], loaded["annotator"], strict=True)) == [
        (0, "ana@example.org"),
        (1, None),
        (2, None),
        (3, None),
    ]
    table = store.load_table(MODEL, DAY.date(), DAY.date())
    assert table is not None and str(table.schema.field("annotator").type) == "string"


def test_files_go_under_the_model_and_the_received_day(store: LabelStore, moto_s3: MotoS3Server) -> None:
    request_id = new_request_id()
    late = DAY.replace(hour=23, minute=59)
    written = store.write([label(request_id, 0, "3", late), label(request_id, 1, "4", late + timedelta(minutes=2))])
    assert len(written) == 2  # the batch spans midnight: one file per received day
    assert any("/digits/date=2031-05-06/" in uri for uri in written)
    assert any("/digits/date=2031-05-07/" in uri for uri in written)
    assert all(uri.endswith(".parquet") for uri in written)
    if store.objects.bucket is not None:  # really in the bucket, under the store's prefix
        keys = [item["Key"] for item in moto_s3.client().list_objects_v2(Bucket="labels")["Contents"]]
        for uri in written:
            assert uri.removeprefix("s3://labels/") in keys
    assert store.read(MODEL, DAY.date(), DAY.date())["label"].tolist() == ["3"]
    assert store.read(MODEL, DAY.date(), DAY.date() + timedelta(days=1))["label"].tolist() == ["3", "4"]
    assert store.read("other-model", DAY.date(), DAY.date() + timedelta(days=1)).empty


def test_the_last_label_received_wins_on_read(store: LabelStore) -> None:
    request_id = new_request_id()
    # Written out of received order: the later label's file is written first.
    store.write([label(request_id, 0, "8", DAY + timedelta(seconds=5))])
    store.write([label(request_id, 0, "3", DAY), label(request_id, 1, "2", DAY)])
    store.write([label(request_id, 1, "5", DAY + timedelta(seconds=9), label_studio_source("batch.json"))])
    loaded = store.load(MODEL, DAY.date(), DAY.date())
    assert list(zip(loaded["image_index"], loaded["label"], loaded["source"], strict=True)) == [
        (0, "8", "feedback"),
        (1, "5", "label-studio:batch.json"),
    ]
    assert len(store.read(MODEL, DAY.date(), DAY.date())) == 4  # nothing was overwritten


def test_an_empty_range_gives_the_columns_and_no_rows(store: LabelStore) -> None:
    loaded = store.load(MODEL, date(2031, 1, 1), date(2031, 1, 3))
    assert loaded.empty and list(loaded.columns) == list(LABEL_COLUMNS)


def test_equal_received_times_resolve_by_store_order() -> None:
    request_id = new_request_id()
    rows = records_frame(
        [label(request_id, 0, "1", DAY), label(request_id, 0, "2", DAY), label(request_id, 0, "3", DAY)]
    )
    assert resolve_labels(rows)["label"].tolist() == ["3"]
    assert resolve_labels(rows.iloc[::-1])["label"].tolist() == ["1"]


def test_a_half_written_local_file_is_never_read(tmp_path: Path) -> None:
    store = LabelStore(str(tmp_path))
    store.write([label(new_request_id(), 0, "3", DAY)])
    folder = tmp_path / MODEL / "date=2031-05-06"
    (folder / ".000000000000-x.parquet.partial").write_bytes(b"PAR1 half")
    assert len(store.read(MODEL, DAY.date(), DAY.date())) == 1


def test_files_hold_plain_parquet_any_reader_can_open(tmp_path: Path) -> None:
    store = LabelStore(str(tmp_path))
    (uri,) = store.write([label(new_request_id(), 2, "9", DAY)])
    table = pd.read_parquet(io.BytesIO(Path(uri).read_bytes()))
    assert table.iloc[0]["label"] == "9" and table.iloc[0]["image_index"] == 2
