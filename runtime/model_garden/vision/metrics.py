"""Prometheus counters of the image pipeline, in the default registry that `/metrics` serves.

- `model_garden_images_accepted_total{source}`: images passed to the engine, by source
  (`data`, `http`, `file`);
- `model_garden_image_bytes_total{source}`: their size in bytes (image files, not base64 text);
- `model_garden_image_refusals_total{reason}`: requests refused, by reason (image_errors.py).

Every label value exists from the start (at 0), so dashboards and alerts see the series before
the first image or refusal.
"""

from __future__ import annotations

from prometheus_client import Counter

from model_garden_common.image_errors import REASONS

SOURCES = ("data", "http", "file")

IMAGES_ACCEPTED = Counter(
    "model_garden_images_accepted", "Images accepted and passed to the engine.", ["source"]
)
IMAGE_BYTES = Counter("model_garden_image_bytes", "Bytes of the accepted images (image files).", ["source"])
IMAGE_REFUSALS = Counter(
    "model_garden_image_refusals", "Requests refused by the image limits and fetch policy.", ["reason"]
)

for _source in SOURCES:
    IMAGES_ACCEPTED.labels(_source)
    IMAGE_BYTES.labels(_source)
for _reason in REASONS:
    IMAGE_REFUSALS.labels(_reason)


def accepted(source: str, size: int) -> None:
    IMAGES_ACCEPTED.labels(source).inc()
    IMAGE_BYTES.labels(source).inc(size)


def refused(reason: str) -> None:
    IMAGE_REFUSALS.labels(reason).inc()
