"""Kubeflow Pipelines (v2 SDK) training pipelines: one per catalogue model.

fetch → preprocess → train (GPU when the catalogue says so) → evaluate → quality gate → register.
`pipelines.contract` (what infra and the pipelines agree on) is importable without kfp: the Pulumi
program reads it; everything else needs the `pipelines` extra.
"""
