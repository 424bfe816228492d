"""Service-level alerting for the model services: Prometheus rules derived from the catalogue.

Each catalogue entry's `ServiceLevel` (workloads/catalogue_entry.py) becomes one rule group
(`rules.model_rule_group`): recording rules for the availability and latency SLIs at the windows
of the multi-window, multi-burn-rate method (`burn_rate`), the burn-rate alerts, and the alerts on
causes the SLIs cannot see (no replica, load shedding, no traffic, a stale drift job).

Standard library and the catalogue only: the Pulumi program will import it to create
PrometheusRule objects, so nothing here may import torch or BentoML.
"""
