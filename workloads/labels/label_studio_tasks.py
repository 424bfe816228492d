"""Label Studio tasks for queued production images: the import file `mlops labels queue` writes.

The inverse of `label_studio.read_export`: a task made here, annotated in Label Studio and exported
as JSON, comes back through `mlops labels import` as the label of the image it shows.

Label Studio's formats, as its documentation describes them (fields relied on only):

* an import file is a JSON list of tasks, each `{"data": {...}, "predictions": [...]}`; `data` holds
  what the labelling interface shows (`$image` for an `<Image value="$image"/>` tag) and any other
  keys, which Label Studio keeps and returns unchanged in the export's `data` — "Label Studio JSON
  format of annotated tasks", https://labelstud.io/guide/task_format, and
  https://labelstud.io/guide/export;
* a pre-annotation is one entry of `predictions`: `model_version`, `score` (the Data Manager sorts
  tasks by it) and `result`, a list of regions; a classification region is `{"type": "choices",
  "from_name": <the Choices tag's name>, "to_name": <the Image tag's name>, "value": {"choices":
  [<class>]}}` — "Import pre-annotated data into Label Studio", https://labelstud.io/guide/predictions,
  and the API reference's "Create prediction" (https://api.labelstud.io);
* a local file is shown through `/data/local-files/?d=<path below LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT>`
  once `LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true` and a Local Files storage covers that folder —
  "Sync data from external storage", section "Local storage" / "Tasks with local storage file
  references", https://labelstud.io/guide/storage (docs/source/guide/storage.md in HumanSignal/label-studio);
  an `s3://bucket/key` URL is shown when the project has an S3 source storage for that bucket (same page).

Ours: `data` carries `request_id` and `index` (the image's position in its request) — what
`read_export` maps an annotation back to, the key the prediction log and the labels store share —
and, for the reviewer and for audit, the model, the version that served the image, its prediction,
the prediction's day and why it was queued. The labelling interface (`label_config`) is one
`Choices` tag named `label` over an `Image` tag named `image`, one choice per class of the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

LOCAL_FILES_URL = "/data/local-files/?d="
FROM_NAME = "label"
"""The `Choices` tag's name: `from_name` of the pre-annotation and of every annotation exported."""
TO_NAME = "image"
"""The `Image` tag's name and the `data` key holding the image's URL (`$image`)."""


@dataclass(frozen=True)
class QueuedImage:
    """One production image sent for labelling, and what the model said about it."""

    request_id: str
    image_index: int
    day: str
    """The UTC day it was served (its prediction-log folder)."""
    model_version: str
    predicted_class: str
    confidence: float
    reason: str
    """Why it was chosen: `drifted day, low confidence` or `low confidence`."""

    @property
    def image_id(self) -> str:
        """A name unique per image, safe as a file name: `<request_id>-<index>`."""
        return f"{self.request_id}-{self.image_index}"


def task(model: str, image: QueuedImage, image_url: str) -> dict[str, object]:
    """The import task of one queued image, the model's prediction as its pre-annotation."""
    return {
        "data": {
            TO_NAME: image_url,
            "request_id": image.request_id,
            "index": image.image_index,
            "model": model,
            "model_version": image.model_version,
            "predicted_class": image.predicted_class,
            "confidence": round(image.confidence, 6),
            "day": image.day,
            "queued_because": image.reason,
        },
        "predictions": [
            {
                "model_version": f"{model} v{image.model_version}",
                "score": round(image.confidence, 6),
                "result": [
                    {
                        "from_name": FROM_NAME,
                        "to_name": TO_NAME,
                        "type": "choices",
                        "value": {"choices": [image.predicted_class]},
                    }
                ],
            }
        ],
    }


def local_file_url(path_below_document_root: str) -> str:
    """The URL Label Studio serves a local file at (the path uses '/' and no leading '/')."""
    return LOCAL_FILES_URL + path_below_document_root.strip("/")


def label_config(class_names: Sequence[str]) -> str:
    """The project's labelling interface: the image and one single choice among the model's classes."""
    choices = "\n".join(f"    <Choice value={quoteattr(name)}/>" for name in class_names)
    return (
        "<View>\n"
        f'  <Image name="{TO_NAME}" value="${TO_NAME}"/>\n'
        f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single" showInline="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>\n"
    )
