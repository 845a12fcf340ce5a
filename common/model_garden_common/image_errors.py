"""Why an image was refused: one exception, a fixed set of reasons (metric labels, docs/vision.md)."""

from __future__ import annotations

from typing import Final

# Every reason a request with images can be refused for. They label the refusal metric and
# appear in the error message, so clients and dashboards can tell them apart.
TOO_MANY_IMAGES: Final = "too_many_images"
IMAGE_TOO_LARGE: Final = "image_too_large"
TOO_MANY_PIXELS: Final = "too_many_pixels"
NOT_AN_IMAGE: Final = "not_an_image"
INVALID_DATA_URL: Final = "invalid_data_url"
UNSUPPORTED_URL: Final = "unsupported_url"
ADDRESS_NOT_ALLOWED: Final = "address_not_allowed"
HOST_NOT_ALLOWED: Final = "host_not_allowed"
TOO_MANY_REDIRECTS: Final = "too_many_redirects"
FETCH_TIMEOUT: Final = "fetch_timeout"
FETCH_FAILED: Final = "fetch_failed"
LOCAL_FILES_DISABLED: Final = "local_files_disabled"
PATH_NOT_ALLOWED: Final = "path_not_allowed"
FILE_NOT_FOUND: Final = "file_not_found"
MODEL_HAS_NO_VISION: Final = "model_has_no_vision"
UNSUPPORTED_MEDIA: Final = "unsupported_media"
REQUEST_TOO_LARGE: Final = "request_too_large"

REASONS: Final = (
    TOO_MANY_IMAGES,
    IMAGE_TOO_LARGE,
    TOO_MANY_PIXELS,
    NOT_AN_IMAGE,
    INVALID_DATA_URL,
    UNSUPPORTED_URL,
    ADDRESS_NOT_ALLOWED,
    HOST_NOT_ALLOWED,
    TOO_MANY_REDIRECTS,
    FETCH_TIMEOUT,
    FETCH_FAILED,
    LOCAL_FILES_DISABLED,
    PATH_NOT_ALLOWED,
    FILE_NOT_FOUND,
    MODEL_HAS_NO_VISION,
    UNSUPPORTED_MEDIA,
    REQUEST_TOO_LARGE,
)


class ImageRefused(ValueError):
    """A client's image (or request) we will not pass to the engine; always a 4xx.

    `reason` is one of REASONS; `param` locates the part (`messages[0].content[1]`).
    """

    def __init__(self, reason: str, message: str, *, param: str | None = None, status_code: int = 400):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.param = param
        self.status_code = status_code

    def at(self, param: str) -> ImageRefused:
        """The same refusal, located at `param` (keeps a more precise location if set)."""
        if self.param is None:
            self.param = param
        return self

    def describe(self) -> str:
        where = f"{self.param}: " if self.param else ""
        return f"{where}image refused ({self.reason}): {self.message}"
