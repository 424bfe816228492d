"""Experiment tracking and model registry: the MLflow server image, the training-side helper and
the registry conventions (aliases `staging` / `production`, lineage tags, promotion history)."""
