"""Command-line values converted without pydantic, so that a command starts sooner.

typer 0.29 converts every parameter of the command it runs with a pydantic `TypeAdapter`;
importing pydantic and building the adapters costs about 0.13 s of every command (a
`validate` of one rule takes 0.5 s in all). entra-sigma's parameters are paths, lists of
paths, choices, text, flags and a few numbers. Paths, choices and text are converted here
exactly as typer's adapters convert them, with the same checks (`typer._param_types`) and
the same error messages; a number written plainly (digits, and a decimal part for a float)
within its bounds is read here, and anything else goes to typer's own adapter, which gives
the value or the error in its words. typer is pinned, and tests/test_cli_params.py holds
both conversions to the same values and errors, so an upgrade that changes typer's
conversion fails there first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, get_args, get_origin

from typer._click.exceptions import BadParameter
from typer._click.utils import _escape_control_characters
from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
from typer._param_types import coerce_cli_choice, coerce_cli_path, routes_to_path


PLAIN_NUMBER = {int: re.compile(r"[0-9]+"), float: re.compile(r"[0-9]+(?:\.[0-9]+)?")}


@dataclass(frozen=True)
class PlainParam(RuntimeParam):
    """A parameter's conversion: paths, lists of paths, choices and text here; others by typer."""

    descriptor: TypeDescriptor

    def _coerce_value(self, value: Any, param, ctx) -> Any:
        if self.annotation in PLAIN_NUMBER and self.parameter_info.parser is None:
            number = self._plain_number(value)
            if number is not None:
                return number
        if self.parameter_info.parser is not None or not handled(self.annotation):
            return build_runtime_param(self.descriptor)._coerce_value(value, param=param, ctx=ctx)
        if get_origin(self.annotation) is list:
            item = get_args(self.annotation)[0]
            values = value if isinstance(value, (list, tuple)) else [value]
            return [self._one(item, v, param, ctx) for v in values]
        return self._one(self.annotation, value, param, ctx)

    def _plain_number(self, value: Any) -> int | float | None:
        """`value` as a number when it is plainly one within bounds, else None (typer decides)."""
        info = self.parameter_info
        if info.clamp:
            return None
        if type(value) is self.annotation:  # a default
            number = value
        elif isinstance(value, str) and PLAIN_NUMBER[self.annotation].fullmatch(value):
            number = self.annotation(value)
        else:
            return None
        if (info.min is not None and number < info.min) or (info.max is not None and number > info.max):
            return None
        return number

    def _one(self, annotation: Any, value: Any, param, ctx) -> Any:
        info = self.parameter_info
        if isinstance(annotation, type) and issubclass(annotation, Enum):
            try:
                return coerce_cli_choice(value, choices=list(annotation), case_sensitive=info.case_sensitive, ctx=ctx)
            except ValueError as error:  # typer's adapter words it as pydantic does
                raise BadParameter(_escape_control_characters(f"Value error, {error}"), ctx=ctx, param=param) from None
        if annotation is str and isinstance(value, str):
            return value
        if routes_to_path(annotation, info):
            path_type = info.path_type or (annotation if issubclass(annotation, Path) else None)
            if path_type is not None and issubclass(path_type, Path) and isinstance(value, str):
                value = path_type(value)  # what pydantic's Path validation makes of text
            return coerce_cli_path(value, info, path_type=path_type, param=param, ctx=ctx)
        single = TypeDescriptor(annotation, info, None)  # e.g. bytes given for text: typer's own conversion
        return build_runtime_param(single)._coerce_value(value, param=param, ctx=ctx)


def handled(annotation: Any) -> bool:
    """Whether `PlainParam` converts this annotation itself (lists of it too)."""
    if get_origin(annotation) is list:
        return handled(get_args(annotation)[0])
    return annotation is str or (isinstance(annotation, type) and issubclass(annotation, (Enum, Path)))


def use_plain_params(command) -> None:
    """Give every parameter of `command` and of its sub-commands the conversion above (typer
    builds its own on first use, so one set beforehand is the one used). A parameter left at
    its default of None is never converted, so a number option given no value costs nothing.
    The `--help` option is made when a command runs: `plain` it then (cli.Verbs does)."""
    for param in command.params:
        plain(param)
    for sub in getattr(command, "commands", {}).values():
        use_plain_params(sub)


def plain(param):
    """`param` with the conversion above, unless typer has built its own already."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None and descriptor.file_annotation is None and getattr(param, "_runtime_param", None) is None:
        param._runtime_param = PlainParam(descriptor.parameter_info, descriptor.annotation, descriptor)
    return param
