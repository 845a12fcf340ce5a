"""Command-line options generated from a settings table (a pydantic model + its FlagRow table).

Engine settings, request limits and vision limits each have one table; every CLI command that takes
them gets its options from here, so an option is spelled once, in its table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import click
from pydantic import BaseModel, ValidationError

from model_garden_common.settings import FlagRow, describe_validation_error

Model = TypeVar("Model", bound=BaseModel)
_TYPES: dict[Any, Any] = {int: click.INT, float: click.FLOAT, str: click.STRING}


def _option_type(model: type[BaseModel], field: str, choices: Mapping[str, Sequence[str]]) -> Any:
    if field in choices:
        return click.Choice(list(choices[field]))
    annotation = model.model_fields[field].annotation
    for python_type, click_type in _TYPES.items():
        if annotation is python_type or python_type in getattr(annotation, "__args__", ()):
            return click_type
    return click.STRING


def table_options(
    model: type[BaseModel],
    rows: Sequence[FlagRow],
    *,
    choices: Mapping[str, Sequence[str]] | None = None,
    metavars: Mapping[str, str] | None = None,
    format_default: Callable[[Any], str] = str,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator adding one option per row; unset options stay None (the model's default applies).

    Every field of `model` must have a default; the help text shows it through `format_default`.
    """
    choices = choices or {}
    metavars = metavars or {}
    defaults = model()

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for row in reversed(rows):
            info = model.model_fields[row.field]
            if row.is_switch:
                option = click.option(row.flag, row.field, is_flag=True, default=None, help=info.description)
            else:
                default = getattr(defaults, row.field)
                default_text = "none" if default in (None, ()) else format_default(default)
                option = click.option(
                    row.flag,
                    row.field,
                    type=_option_type(model, row.field, choices),
                    metavar=metavars.get(row.field),
                    default=None,
                    help=f"{info.description} [default: {default_text}]",
                )
            command = option(command)
        return command

    return decorate


def model_from_options(model: type[Model], rows: Sequence[FlagRow], options: dict[str, Any]) -> Model:
    """The model from the options `table_options` added (popped from `options`); UsageError if invalid."""
    given = {row.field: options.pop(row.field) for row in rows}
    try:
        return model(**{key: value for key, value in given.items() if value is not None})
    except ValidationError as error:
        raise click.UsageError(describe_validation_error(error)) from None
