"""Our CBPE (`monitoring.performance_estimate`) against NannyML 0.13.1's, on the same synthetic data.

NannyML does not install beside the project's pins (see `monitoring/performance_estimate.py`), so this
runs in a venv of its own, with this checkout on the path:

    python -m venv /tmp/nm && /tmp/nm/bin/pip install nannyml==0.13.1 statsmodels 'pandas==2.3.3' 'numpy==2.4.6' \\
        'scikit-learn==1.9.1' 'scipy==1.17.1' 'pyarrow==25.0.1'
    /tmp/nm/bin/python benchmarks/cbpe_vs_nannyml.py

A 5-class problem whose labels are drawn from known probabilities; the model reports them sharpened
(over-confident), on a day like the calibration data and on a noisier one. Prints both estimates and
the measured accuracy per day.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring.performance_estimate import Calibration

CLASSES = 5


def synthetic(
    rows: int, temperature: float, noise: float, generator: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    logits = generator.normal(0.0, 1.0, (rows, CLASSES)) * 2.0
    truth = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = (generator.random((rows, 1)) > truth.cumsum(axis=1)).sum(axis=1)
    shown = logits / temperature + noise * generator.normal(0.0, 1.0, (rows, CLASSES))
    reported = np.exp(shown) / np.exp(shown).sum(axis=1, keepdims=True)
    return reported, labels


def frame(probabilities: np.ndarray, labels: np.ndarray | None) -> pd.DataFrame:
    table = pd.DataFrame(probabilities, columns=[f"p{index}" for index in range(CLASSES)])
    table["y_pred"] = probabilities.argmax(axis=1)
    if labels is not None:
        table["y_true"] = labels
    return table


def nannyml_estimate(reference: tuple[np.ndarray, np.ndarray], day: np.ndarray) -> float:
    import nannyml  # pyright: ignore[reportMissingImports]

    estimator = nannyml.CBPE(
        y_pred_proba={index: f"p{index}" for index in range(CLASSES)},
        y_pred="y_pred",
        y_true="y_true",
        problem_type="classification_multiclass",
        metrics=["accuracy"],
        chunk_number=1,
    )
    estimator.fit(frame(*reference))
    result = estimator.estimate(frame(day, None)).filter(period="analysis").to_df()
    return float(result[("accuracy", "value")].iloc[0])


def main() -> None:
    generator = np.random.default_rng(0)
    reference = synthetic(3000, 0.6, 0.0, generator)
    outcome = {}
    for name, noise in (("like the calibration data", 0.0), ("noisier", 1.0)):
        day, labels = synthetic(5000, 0.6, noise, generator)
        outcome[name] = {
            "ours": Calibration.fit(*reference).estimate(day).accuracy,
            "nannyml": nannyml_estimate(reference, day),
            "measured": float((day.argmax(axis=1) == labels).mean()),
        }
    print(json.dumps(outcome, indent=1))


if __name__ == "__main__":
    main()
