"""Service-level alerting for the model services: Prometheus rules derived from the catalogue.

Each catalogue entry's `ServiceLevel` (workloads/catalogue_entry.py) becomes one rule group
(`rules.model_rule_group`): recording rules for the availability and latency SLIs at the windows
of the multi-window, multi-burn-rate method (`burn_rate`), the burn-rate alerts, and the alerts on
causes the SLIs cannot see (no replica, load shedding, no traffic, a stale drift job, a degraded
measured accuracy). `dashboards` draws the same series; `metrics` names what they read and where it
comes from. Outside a cluster, `local_servers` and `scrape_config` run Prometheus, Alertmanager and
the Pushgateway on loopback with the same rules (the end-to-end tests, `make demo`).

Standard library and the catalogue only: the Pulumi program will import it to create
PrometheusRule objects, so nothing here may import torch or BentoML.
"""
