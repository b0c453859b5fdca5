"""Option values read without pydantic, where Typer would build a pydantic adapter for each.

Why: Typer (0.2x) coerces every parameter of the command being run through a pydantic
``TypeAdapter``: importing pydantic and building the adapters cost more than the rest of a
``perfledger log`` process's start. The values this command line takes are text
(``--ticker``), lists of text (``--param K=V``), a choice (``--format``) or read by one of
our parsers (``--sharpe``, ``--days``: :func:`.options.real`), and reading those needs none
of it. :func:`lighten` gives each such parameter a coercion that reads them as Typer's own
would and hands anything else (a bad choice, any other type) to Typer's pydantic coercion,
built only then, so values, errors and help stay Typer's.

It relies on Typer's runtime-coercion layer (``typer._coercion``, a parameter's
``_runtime_param``); with a Typer without it (older or newer), :func:`lighten` does nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

try:  # Typer's private coercion layer: see the module doc
    from typer._coercion import RuntimeParam, build_runtime_param
    from typer._param_types import coerce_cli_choice
except ImportError:  # pragma: no cover - another Typer: its own coercion runs
    RuntimeParam = None  # type: ignore[assignment,misc]

_UNREAD = object()


def lighten(params: Sequence[Any]) -> Sequence[Any]:
    """``params`` with a pydantic-free coercion set on each Typer parameter not yet coerced."""
    if RuntimeParam is None:
        return params
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is not None and getattr(param, "_runtime_param", _UNREAD) is None:
            param._runtime_param = _Plain(parameter_info=descriptor.parameter_info,
                                          annotation=descriptor.annotation, descriptor=descriptor)
    return params


if RuntimeParam is not None:

    @dataclass(frozen=True)
    class _Plain(RuntimeParam):  # type: ignore[misc,valid-type]
        """Text, lists of text, choices and our parsers read here; anything else by Typer."""

        descriptor: Any

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            info, annotation = self.parameter_info, self.annotation
            if self.descriptor.file_annotation is None:
                if self.descriptor.is_list and isinstance(value, (list, tuple)):
                    (item,) = getattr(annotation, "__args__", (None,))
                    if item is str and info.parser is None and all(isinstance(v, str) for v in value):
                        return list(value)
                else:
                    read = _read(annotation, info, value, ctx)
                    if read is not _UNREAD:
                        return read
            full = build_runtime_param(self.descriptor)  # pydantic, for what is not read here
            param._runtime_param = full
            return full._coerce_value(value, param=param, ctx=ctx)


def _read(annotation: Any, info: Any, value: Any, ctx: Any) -> Any:
    """One value as Typer's adapter reads it, or ``_UNREAD``."""
    if info.parser is not None:
        try:
            return info.parser(value)  # Typer's adapter calls it on the value as given
        except (ValueError, AssertionError):
            return _UNREAD  # pydantic's wording of it: Typer's adapter calls the parser again
    if annotation is str and isinstance(value, str):
        return value
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        try:
            return coerce_cli_choice(value, choices=list(annotation), case_sensitive=info.case_sensitive,
                                     ctx=ctx)
        except ValueError:
            return _UNREAD  # Typer says why, in its words
    return _UNREAD
