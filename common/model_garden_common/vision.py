"""Image limits and fetch policy: one validated model, and its one table "field -> runtime flag".

Like settings.EngineSettings for the engine: the `serve`, `serve-model`, `inference-generate` and
`inference-chat` options, the operator's container arguments (from the CRD's `vision` section) and
the tests all come from here. No other file spells these flags. These are flags of the Model
Garden runtime, not of vLLM: vLLM never sees an image URL (see vision/pipeline.py).

Imports nothing heavy: the slim operator image uses this module.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from model_garden_common.addresses import parse_allow_entry
from model_garden_common.constants import DEFAULT_MAX_IMAGE_BYTES
from model_garden_common.settings import FlagRow, SettingsError, describe_validation_error

MIB = 1024 * 1024
DEFAULT_MAX_IMAGES_PER_REQUEST = 8
# 4096 x 4096. A decoded image is at most 4 bytes a pixel (64 MiB at this limit).
DEFAULT_MAX_IMAGE_PIXELS = 4096 * 4096
# Room for one image of DEFAULT_MAX_IMAGE_BYTES as a base64 data URL (4/3 of it) and then some.
DEFAULT_MAX_REQUEST_BYTES = 32 * MIB
DEFAULT_IMAGE_FETCH_TIMEOUT = 10.0
DEFAULT_IMAGE_MAX_REDIRECTS = 3
# Downloads in flight at once, server-wide: with --max-image-bytes, a bound on the memory image
# downloads hold (16 x 10 MiB), however many requests carry image URLs.
DEFAULT_MAX_CONCURRENT_IMAGE_FETCHES = 16
# Pillow refuses more than twice its MAX_IMAGE_PIXELS outright; stay under its own bomb guard.
MAX_IMAGE_PIXELS_CEILING = 178_956_970
LIST_SEPARATOR = ","


class VisionSettings(BaseModel):
    """Limits on images in requests and the policy for fetching them. Every field has a row in
    VISION_FLAGS."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_images_per_request: int = Field(
        DEFAULT_MAX_IMAGES_PER_REQUEST,
        ge=0,
        le=1000,
        description="Most images one request may carry, across all its messages (0 refuses images).",
    )
    max_image_bytes: int = Field(
        DEFAULT_MAX_IMAGE_BYTES,
        ge=1,
        description="Largest image file, in bytes: a data URL's decoded bytes, a download, a local file "
        "(a data URL's base64 text may be 4/3 of it).",
    )
    max_image_pixels: int = Field(
        DEFAULT_MAX_IMAGE_PIXELS,
        ge=1,
        le=MAX_IMAGE_PIXELS_CEILING,
        description="Most pixels (width x height) of an image, checked from its header before it is "
        "decoded (no decompression bombs).",
    )
    max_request_bytes: int = Field(
        DEFAULT_MAX_REQUEST_BYTES,
        ge=1024,
        description="Largest request body, in bytes, on every route (413 beyond it).",
    )
    image_fetch_timeout: float = Field(
        DEFAULT_IMAGE_FETCH_TIMEOUT,
        gt=0,
        le=600,
        description="Seconds an image URL may take to fetch, redirects and download included.",
    )
    image_max_redirects: int = Field(
        DEFAULT_IMAGE_MAX_REDIRECTS,
        ge=0,
        le=20,
        description="Most redirects followed when fetching an image URL (each hop is checked again).",
    )
    max_concurrent_image_fetches: int = Field(
        DEFAULT_MAX_CONCURRENT_IMAGE_FETCHES,
        ge=1,
        le=1024,
        description="Most image URLs the server downloads at once, across all requests; the others "
        "wait their turn (the wait is not part of the fetch timeout, the request timeout covers it).",
    )
    allowed_image_hosts: tuple[str, ...] = Field(
        (),
        description="Exceptions to the public-address rule for image URLs, comma-separated: host:port "
        "pairs (images.internal:8080, [fd00::5]:443) and CIDR ranges (10.0.0.0/8). Default: none, so "
        "only public addresses are fetched.",
    )
    allowed_image_hosts_only: bool = Field(
        False,
        description="Fetch image URLs only from the allowed hosts and ranges, public addresses included.",
    )
    allowed_local_image_dir: str | None = Field(
        None,
        min_length=1,
        description="Directory whose files may be sent as file:// image URLs (symlinks are not followed). "
        "Default: none, file:// URLs are refused.",
    )

    @field_validator("allowed_image_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [entry for entry in value.split(LIST_SEPARATOR) if entry.strip()]
        return value

    @field_validator("allowed_image_hosts")
    @classmethod
    def _valid_hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            parse_allow_entry(entry)  # ValueError names the entry
        return tuple(entry.strip() for entry in value)

    @field_validator("allowed_local_image_dir")
    @classmethod
    def _absolute_dir(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"{value!r} must be an absolute path")
        return value

    def to_args(self) -> list[str]:
        """Runtime flags for the settings that differ from the defaults, in table order."""
        args: list[str] = []
        defaults = VisionSettings()
        for row in VISION_FLAGS:
            value = getattr(self, row.field)
            if value == getattr(defaults, row.field):
                continue
            if row.is_switch:
                args.append(row.flag)
            else:
                args += [row.flag, format_vision_value(value)]
        return args


# THE table: field -> runtime flag. Order is the order flags are emitted in.
VISION_FLAGS: tuple[FlagRow, ...] = (
    FlagRow("max_images_per_request", "--max-images-per-request"),
    FlagRow("max_image_bytes", "--max-image-bytes"),
    FlagRow("max_image_pixels", "--max-image-pixels"),
    FlagRow("max_request_bytes", "--max-request-bytes"),
    FlagRow("image_fetch_timeout", "--image-fetch-timeout"),
    FlagRow("image_max_redirects", "--image-max-redirects"),
    FlagRow("max_concurrent_image_fetches", "--max-concurrent-image-fetches"),
    FlagRow("allowed_image_hosts", "--allowed-image-hosts"),
    FlagRow("allowed_image_hosts_only", "--allowed-image-hosts-only", is_switch=True),
    FlagRow("allowed_local_image_dir", "--allowed-local-image-dir"),
)


def format_vision_value(value: Any) -> str:
    if isinstance(value, tuple):
        return LIST_SEPARATOR.join(value)
    # repr() of a float is the shortest round-tripping text (2.5, not 2.50000001).
    return repr(value) if isinstance(value, float) else str(value)


def vision_settings(**values: Any) -> VisionSettings:
    """Build VisionSettings, turning pydantic's report into one readable SettingsError."""
    try:
        return VisionSettings(**values)
    except ValidationError as error:
        raise SettingsError(describe_validation_error(error)) from None


def _vision_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for row in VISION_FLAGS:
        if row.is_switch:
            parser.add_argument(row.flag, dest=row.field, action="store_true", default=None)
        else:
            parser.add_argument(row.flag, dest=row.field, default=None)
    return parser


def parse_vision_args(argv: Iterable[str]) -> tuple[VisionSettings, list[str]]:
    """Split runtime vision flags from other arguments: `parse_vision_args(s.to_args())[0] == s`."""
    namespace, rest = _vision_arg_parser().parse_known_args(list(argv))
    given = {key: value for key, value in vars(namespace).items() if value is not None}
    return vision_settings(**given), rest
