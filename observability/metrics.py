"""The metric names the rules query, and where each one comes from.

The model service's own names are checked against a real `bentoml serve` of a catalogue model
(tests/serving/test_alert_metric_names.py scrapes its /metrics). kube-state-metrics runs only in a
cluster, so its names are recorded here as facts, each with the upstream page and release that
documents it, and excluded from that scrape.
"""

from __future__ import annotations

from dataclasses import dataclass

# BentoML 1.4.40 registers these in `bentoml/_internal/server/http/instruments.py` under the
# `bentoml_service` namespace (the service's HTTP app); a histogram is exported as its three series.
REQUESTS_TOTAL = "bentoml_service_request_total"
"""Counter of answered HTTP requests; labels `endpoint`, `http_response_code`, `service_name`, `service_version`."""
REQUEST_DURATION_BUCKET = "bentoml_service_request_duration_seconds_bucket"
"""Cumulative buckets (`le`) of the request duration histogram, same labels as REQUESTS_TOTAL."""
REQUEST_DURATION_COUNT = "bentoml_service_request_duration_seconds_count"
"""Number of observations of the request duration histogram."""
SERVICE_METRICS = (REQUESTS_TOTAL, REQUEST_DURATION_BUCKET, REQUEST_DURATION_COUNT)
"""Every name the rules read from the model service's /metrics."""
REQUESTS_IN_PROGRESS = "bentoml_service_request_in_progress"
"""Gauge of requests being answered (same file, `request_in_progress`); labels `endpoint`, `service_name`,
`service_version`. Only the dashboards read it: no alert waits on it."""
# The service's own histogram of the batches its adaptive-batching dispatcher formed (workloads/serving/
# service.py, BATCH_METRIC; no labels of its own: one series per replica under the scrape's `job`).
BATCH_IMAGES_SUM = "mlops_serving_batch_images_sum"
"""Images in the batches formed (the histogram's sum)."""
BATCH_IMAGES_COUNT = "mlops_serving_batch_images_count"
"""Batches formed (the histogram's count)."""
BATCH_IMAGES_BUCKET = "mlops_serving_batch_images_bucket"
"""Cumulative buckets (`le`) of the batch sizes."""
DASHBOARD_SERVICE_METRICS = (
    *SERVICE_METRICS,
    REQUESTS_IN_PROGRESS,
    BATCH_IMAGES_SUM,
    BATCH_IMAGES_COUNT,
    BATCH_IMAGES_BUCKET,
)
"""Every name the dashboards read from the model service's /metrics."""

DURATION_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 180.0)
"""Upper bounds of BentoML's request duration histogram (its DEFAULT_BUCKET in 1.4.40,
`bentoml/_internal/utils/metrics.py`; the service configures none). A latency objective must be one
of them: the SLI counts the requests in the bucket at the threshold, and Prometheus cannot split one."""


@dataclass(frozen=True)
class RecordedMetric:
    """A metric name taken from upstream documentation rather than from a scrape."""

    name: str
    source: str
    """The upstream page that lists it (read at `revision`)."""
    revision: str
    """Which version of that page was read, and what it says about the metric."""


# Read in the kube-state-metrics repository; the CHANGELOG of v2.5.0 (2022-06-03) adds
# kube_cronjob_status_last_successful_time (PR #1732), so the rules need kube-state-metrics >= 2.5.
_KSM = "https://github.com/kubernetes/kube-state-metrics/blob/{commit}/docs/metrics/workload/{page}"
_DEPLOYMENTS = _KSM.format(commit="06d14813741ca10fb225c3d07aff6347f373e054", page="deployment-metrics.md")
_CRONJOBS = _KSM.format(commit="112ec602096988b0d011639d609168d2f4512424", page="cronjob-metrics.md")

DEPLOYMENT_SPEC_REPLICAS = RecordedMetric(
    "kube_deployment_spec_replicas", _DEPLOYMENTS, "gauge, STABLE: desired pods (the autoscaler's choice)"
)
DEPLOYMENT_AVAILABLE_REPLICAS = RecordedMetric(
    "kube_deployment_status_replicas_available", _DEPLOYMENTS, "gauge, STABLE: available replicas"
)
CRONJOB_CREATED = RecordedMetric("kube_cronjob_created", _CRONJOBS, "gauge, STABLE: creation time (Unix seconds)")
CRONJOB_LAST_SUCCESS = RecordedMetric(
    "kube_cronjob_status_last_successful_time",
    _CRONJOBS,
    "gauge, STABLE there, added in v2.5.0: when a Job last succeeded (no sample until one has)",
)
KUBE_STATE_METRICS = (DEPLOYMENT_SPEC_REPLICAS, DEPLOYMENT_AVAILABLE_REPLICAS, CRONJOB_CREATED, CRONJOB_LAST_SUCCESS)
"""Every name the rules read from kube-state-metrics; labels `namespace` and `deployment` or `cronjob`."""

# The daily jobs push these to the Pushgateway at the end of a run (monitoring/job_metrics.py, which
# observability/ cannot import: the layers are siblings); tests/monitoring/test_job_metrics.py pushes a
# real drift and quality run to a real Pushgateway and checks every name below is there.
DRIFT_JOB = "mlops-drift"
"""The `job` label the drift job pushes with (the Pushgateway's grouping key, kept by honorLabels)."""
QUALITY_JOB = "mlops-quality"
DRIFT_DRIFTED_SHARE = "mlops_drift_drifted_share"
"""Share of the compared features whose own test rejects (informational: the families decide)."""
DRIFT_DATASET_DRIFT = "mlops_drift_dataset_drift"
"""1 when a signal family rejected at its level: the run's verdict."""
DRIFT_SIGNAL_P_VALUE = "mlops_drift_signal_p_value"
"""Per `signal` family: its corrected p-value (beside `mlops_drift_signal_level`, its level)."""
DRIFT_SIGNAL_LEVEL = "mlops_drift_signal_level"
DRIFT_SIGNAL_DECIDING = "mlops_drift_signal_deciding"
"""Per `signal` family: 1 when it rejected, i.e. decided the run's verdict."""
QUALITY_ACCURACY = "mlops_quality_accuracy"
"""Per `model_version`: accuracy on the labelled predictions of its newest judged prediction day."""
QUALITY_INTERVAL_LOW = "mlops_quality_accuracy_interval_low"
QUALITY_INTERVAL_HIGH = "mlops_quality_accuracy_interval_high"
QUALITY_ACCURACY_FLOOR = "mlops_quality_accuracy_floor"
"""Validation accuracy minus the job's margin: the version is degraded while its interval is below it."""
QUALITY_ESTIMATED_ACCURACY = "mlops_quality_estimated_accuracy"
"""Per `model_version`: the label-free estimate (CBPE) of its newest estimated day, labelled or not."""
JOB_METRICS = (
    DRIFT_DRIFTED_SHARE,
    DRIFT_DATASET_DRIFT,
    DRIFT_SIGNAL_P_VALUE,
    DRIFT_SIGNAL_LEVEL,
    DRIFT_SIGNAL_DECIDING,
    QUALITY_ACCURACY,
    QUALITY_INTERVAL_LOW,
    QUALITY_INTERVAL_HIGH,
    QUALITY_ACCURACY_FLOOR,
    QUALITY_ESTIMATED_ACCURACY,
)
"""Every name the rules and dashboards read from the daily jobs."""
# NVIDIA's dcgm-exporter 4.5.3-4.8.2 (chart 4.8.2, infra/gpu_metrics.py), on the GPU pools' nodes: the
# field names and units of its counters file (`deployment/templates/metrics-configmap.yaml`, and the
# DCGM field of each name), with the GPU's pod in labels `namespace`, `pod`, `container`
# (`internal/pkg/transformation/const.go`, through the kubelet's pod-resources API).
_DCGM = "https://github.com/NVIDIA/dcgm-exporter/blob/4.5.3-4.8.2/deployment/templates/metrics-configmap.yaml"
GPU_UTILIZATION = RecordedMetric("DCGM_FI_DEV_GPU_UTIL", _DCGM, "gauge: GPU utilisation (in %)")
GPU_MEMORY_USED = RecordedMetric("DCGM_FI_DEV_FB_USED", _DCGM, "gauge: framebuffer memory used (in MiB)")
GPU_MEMORY_FREE = RecordedMetric("DCGM_FI_DEV_FB_FREE", _DCGM, "gauge: framebuffer memory free (in MiB)")
DCGM_METRICS = (GPU_UTILIZATION, GPU_MEMORY_USED, GPU_MEMORY_FREE)
"""Every DCGM name the dashboards read; labels `namespace` and `pod` of the pod holding the GPU."""
