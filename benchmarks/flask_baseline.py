"""The per-request baseline `benchmarks/serving.py` compares BentoML with: what a team writes before
a serving platform, written competently.

A Flask app behind gunicorn (one process, `gthread` threads = the load's concurrency), the model
loaded once at start (the same `load_version` the service uses, on the same device: MLOPS_DEVICE,
else a visible GPU, with the same warm-up), `torch.inference_mode`, the same torch intra-op threads,
the same decoding and preprocessing (`workloads.serving.inputs`). Every request is one forward pass
of batch 1: no batching, no logging, no validation beyond decoding.

    MLOPS_MODEL=digits MLOPS_MODEL_VERSION=1 MLOPS_TORCH_THREADS=2 \\
        gunicorn -k gthread --threads 8 -b 127.0.0.1:5001 'benchmarks.flask_baseline:create_app()'
"""

from __future__ import annotations

import os

import numpy as np
import torch
from flask import Flask, jsonify, request

from workloads.serving.device import serving_placement
from workloads.serving.inputs import InvalidRequestError, decode_image_file, model_inputs
from workloads.serving.model_source import load_version
from workloads.serving.settings import load_settings

MODEL_VERSION_VARIABLE = "MLOPS_MODEL_VERSION"
"""The registered version the baseline serves (it follows no alias)."""


def create_app() -> Flask:
    settings = load_settings()  # the service's variables: the same model, entry and torch threads
    torch.set_num_threads(settings.torch_threads)
    entry = settings.entry
    # On the service's device (MLOPS_DEVICE, else a visible GPU), warmed up like the service's model.
    loaded = load_version(entry.name, os.environ[MODEL_VERSION_VARIABLE], serving_placement(settings))
    app = Flask(__name__)

    @app.post("/classify_image")
    def classify_image():  # type: ignore[no-untyped-def]
        upload = request.files.get("image")
        if upload is None:
            return jsonify(error="send the image in the multipart field 'image'"), 400
        try:
            images = decode_image_file(upload.read(), entry.image_shape, 1 << 24)
        except InvalidRequestError as error:
            return jsonify(error=str(error)), error.status
        probabilities = loaded.predict(model_inputs(images))[0]
        index = int(np.argmax(probabilities))
        return jsonify(
            model=entry.name,
            version=loaded.version,
            predictions=[
                {
                    "class": entry.class_names[index],
                    "confidence": float(probabilities[index]),
                    "probabilities": dict(zip(entry.class_names, map(float, probabilities), strict=True)),
                }
            ],
        )

    @app.get("/readyz")
    def readyz():  # type: ignore[no-untyped-def]
        return "ok\n"

    return app
