"""The image options of the `model-garden` commands, generated from the vision flag table."""

from __future__ import annotations

from typing import Any

import click

from model_garden_common.options import table_options
from model_garden_common.settings import SettingsError
from model_garden_common.vision import VISION_FLAGS, VisionSettings, format_vision_value, vision_settings

vision_options = table_options(VisionSettings, VISION_FLAGS, format_default=format_vision_value)


def vision_from_options(options: dict[str, Any]) -> VisionSettings:
    """VisionSettings from the options `vision_options` added (popped); UsageError if invalid."""
    from model_garden.vision.pipeline import allowed_dirs

    given = {row.field: options.pop(row.field) for row in VISION_FLAGS}
    try:
        settings = vision_settings(**{key: value for key, value in given.items() if value is not None})
        allowed_dirs(settings.allowed_local_image_dir)
    except SettingsError as error:
        raise click.UsageError(str(error)) from None
    return settings
