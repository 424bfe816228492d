"""Model serving: one BentoML service per catalogue model, loading `models:/NAME@production` from the
registry, following the alias, and logging every prediction's drift features for the drift job.

`service.py` is the BentoML entry point (`bentoml serve workloads.serving.service:ImageClassifier`);
the other modules are plain Python, one concept each, so they can be tested and reused without
BentoML: `settings` (environment variables), `inputs` (request decoding and validation),
`model_source` (alias resolution, loading and hot swap), `prediction_log` (buffered parquet writer),
`request_guard` (ASGI limits on size and content type), `request_timeout` (BentoML's request timeout
without its per-request memory retention).
"""
