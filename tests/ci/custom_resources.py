"""Strict schemas for the custom resources the platform declares, which kubernetes-validate has none of.

Each is the part of its CRD the platform uses, with `additionalProperties: false` at every level, so
a misspelt or misplaced field fails as it would against the real CRD. Every property, type, enum and
requirement below was read in the CRDs of kube-prometheus-stack 88.3.0 (`charts/crds/crds/`,
prometheus-operator v0.93.0), the chart infra/monitoring_stack.py pins (the AlertmanagerConfig's
`snsConfigs` in the operator's `example/prometheus-operator-crd-full/` at v0.93.0), and, for the
ScaledObject, of KEDA 2.20.2 (below); a field the platform starts using must be added here after
reading it there.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

# The CRDs' duration pattern (monitoring.coreos.com Duration).
_DURATION: Schema = {
    "type": "string",
    "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$",
}
_STRING: Schema = {"type": "string"}
_LABELS: Schema = {"type": "object", "additionalProperties": {"type": "string"}}


def _object(properties: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


_METADATA = _object(
    {"name": _STRING, "namespace": _STRING, "labels": _LABELS, "annotations": _LABELS}, required=("name", "namespace")
)


def _resource(api_version: str, kind: str, spec: Schema) -> Schema:
    return _object(
        {"apiVersion": {"const": api_version}, "kind": {"const": kind}, "metadata": _METADATA, "spec": spec},
        required=("apiVersion", "kind", "metadata", "spec"),
    )


_LABEL_SELECTOR = _object({"matchLabels": _LABELS})

SERVICE_MONITOR = _resource(
    "monitoring.coreos.com/v1",
    "ServiceMonitor",
    _object(
        {
            "selector": _LABEL_SELECTOR,
            "namespaceSelector": _object({"matchNames": {"type": "array", "items": _STRING}}),
            "jobLabel": _STRING,
            "endpoints": {
                "type": "array",
                "items": _object(
                    {
                        "port": _STRING,
                        "path": _STRING,
                        "scheme": {"type": "string", "enum": ["http", "https", "HTTP", "HTTPS"]},
                        "interval": _DURATION,
                        "scrapeTimeout": _DURATION,
                        "honorLabels": {"type": "boolean"},
                    }
                ),
            },
        },
        required=("endpoints", "selector"),
    ),
)

_RULE = _object(
    {
        "record": _STRING,
        "alert": _STRING,
        "expr": {"type": ["integer", "string"]},
        "for": _DURATION,
        "labels": _LABELS,
        "annotations": _LABELS,
    },
    required=("expr",),
)
PROMETHEUS_RULE = _resource(
    "monitoring.coreos.com/v1",
    "PrometheusRule",
    _object(
        {
            "groups": {
                "type": "array",
                "items": _object(
                    {
                        "name": {"type": "string", "minLength": 1},
                        "interval": _DURATION,
                        "rules": {"type": "array", "items": _RULE},
                    },
                    required=("name",),
                ),
            }
        }
    ),
)

_MATCHER = _object(
    {"name": {"type": "string", "minLength": 1}, "value": _STRING, "matchType": {"enum": ["!=", "=", "=~", "!~"]}},
    required=("name",),
)
_ROUTE_FIELDS: dict[str, Schema] = {
    "receiver": _STRING,
    "groupBy": {"type": "array", "items": _STRING},
    "groupWait": {**_DURATION, "minLength": 1},
    "groupInterval": {**_DURATION, "minLength": 1},
    "repeatInterval": {**_DURATION, "minLength": 1},
    "matchers": {"type": "array", "items": _MATCHER},
    "continue": {"type": "boolean"},
}
# `routes` items are `x-kubernetes-preserve-unknown-fields` in the CRD; held here to the route's own fields.
_CHILD_ROUTE = _object(_ROUTE_FIELDS)
_SECRET_KEY = _object({"name": _STRING, "key": _STRING, "optional": {"type": "boolean"}}, required=("key",))
_NON_EMPTY: Schema = {"type": "string", "minLength": 1}
_SNS_CONFIG = _object(
    {
        "sendResolved": {"type": "boolean"},
        "apiURL": _STRING,
        "sigv4": _object({"region": _STRING, "profile": _STRING, "roleArn": _STRING}),
        "topicARN": _NON_EMPTY,
        "subject": _NON_EMPTY,
        "message": _NON_EMPTY,
    }
)
ALERTMANAGER_CONFIG = _resource(
    "monitoring.coreos.com/v1alpha1",
    "AlertmanagerConfig",
    _object(
        {
            "route": _object({**_ROUTE_FIELDS, "routes": {"type": "array", "items": _CHILD_ROUTE}}),
            "receivers": {
                "type": "array",
                "items": _object(
                    {
                        "name": {"type": "string", "minLength": 1},
                        "slackConfigs": {
                            "type": "array",
                            "items": _object(
                                {
                                    "apiURL": _SECRET_KEY,
                                    "sendResolved": {"type": "boolean"},
                                    "title": _STRING,
                                    "text": _STRING,
                                }
                            ),
                        },
                        "snsConfigs": {"type": "array", "items": _SNS_CONFIG},
                    },
                    required=("name",),
                ),
            },
        }
    ),
)

# KEDA 2.20.2's ScaledObject CRD (kedacore/charts v2.20.2 `keda/templates/crds/crd-scaledobjects.yaml`),
# which infra/serving_autoscaler.py pins: the fields the platform sets, with the CRD's types, enums and
# requirements; trigger `metadata` is a map of strings there.
_INT32: Schema = {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}
_SCALING_POLICY = _object(
    {"type": _STRING, "value": _INT32, "periodSeconds": _INT32}, required=("periodSeconds", "type", "value")
)
_SCALING_RULES = _object(
    {
        "policies": {"type": "array", "items": _SCALING_POLICY},
        "selectPolicy": _STRING,
        "stabilizationWindowSeconds": {"type": "integer", "minimum": 0, "maximum": 3600},
    }
)
SCALED_OBJECT = _resource(
    "keda.sh/v1alpha1",
    "ScaledObject",
    _object(
        {
            "scaleTargetRef": _object({"apiVersion": _STRING, "kind": _STRING, "name": _STRING}, required=("name",)),
            "minReplicaCount": _INT32,
            "maxReplicaCount": _INT32,
            "pollingInterval": _INT32,
            "cooldownPeriod": _INT32,
            "fallback": _object(
                {
                    "failureThreshold": _INT32,
                    "replicas": _INT32,
                    "behavior": {
                        "enum": [
                            "static",
                            "currentReplicas",
                            "currentReplicasIfHigher",
                            "currentReplicasIfLower",
                            "scalingModifiers",
                        ]
                    },
                },
                required=("failureThreshold", "replicas"),
            ),
            "advanced": _object(
                {
                    "horizontalPodAutoscalerConfig": _object(
                        {"name": _STRING, "behavior": _object({"scaleUp": _SCALING_RULES, "scaleDown": _SCALING_RULES})}
                    ),
                    "restoreToOriginalReplicaCount": {"type": "boolean"},
                }
            ),
            "triggers": {
                "type": "array",
                "items": _object(
                    {"type": _STRING, "name": _STRING, "metricType": _STRING, "metadata": _LABELS},
                    required=("metadata", "type"),
                ),
            },
        },
        required=("scaleTargetRef", "triggers"),
    ),
)

SCHEMAS: dict[tuple[str, str], Schema] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR,
    ("monitoring.coreos.com/v1", "PrometheusRule"): PROMETHEUS_RULE,
    ("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig"): ALERTMANAGER_CONFIG,
    ("keda.sh/v1alpha1", "ScaledObject"): SCALED_OBJECT,
}
"""(apiVersion, kind) -> strict schema, for the kinds outside Kubernetes' own API."""
