"""The image options of the `model-garden` commands, generated from the vision flag table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from model_garden.settings import SettingsError
from model_garden.vision.settings import VISION_FLAGS, VisionSettings, format_vision_value, vision_settings

_TYPES: dict[Any, Any] = {int: click.INT, float: click.FLOAT}


def vision_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add one option per row of the vision table (defaults stay VisionSettings')."""
    defaults = VisionSettings()
    for row in reversed(VISION_FLAGS):
        info = VisionSettings.model_fields[row.field]
        if row.is_switch:
            option = click.option(row.flag, row.field, is_flag=True, default=None, help=info.description)
        else:
            default = getattr(defaults, row.field)
            shown = "none" if default in (None, ()) else format_vision_value(default)
            option = click.option(
                row.flag,
                row.field,
                type=_TYPES.get(info.annotation, click.STRING),
                default=None,
                help=f"{info.description} [default: {shown}]",
            )
        command = option(command)
    return command


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
