"""The options several commands share, each defined once: name, type and help text.

Commands annotate a parameter with one of these (``ticker: TickerFilter = None``) so the
same option reads and behaves the same everywhere. Choices are enums, so Click checks them
(a bad ``--format`` is a usage error, exit 2). ``NAME=X`` / ``K=V`` lists arrive as text and
are split by :func:`numbers` / :func:`pairs`, which fail with one ``Error:`` line.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from ..errors import ValidationError
from ..records.numbers import MAX_WHOLE, shown, to_real, to_whole, whole_words
from ..records.timestamps import DAYS_WORDS, check_days_back
from ..records.typed import json_from_text
from .app import fail


class OutputFormat(StrEnum):
    """How a command prints what it found."""

    table = "table"
    csv = "csv"
    json = "json"


class ExportFormat(StrEnum):
    """The file formats of ``export`` (the same as ``perfledger.files.exporter.EXPORT_FORMATS``)."""

    csv = "csv"
    json = "json"
    parquet = "parquet"


Ticker = Annotated[str, typer.Option("--ticker", help="Ticker, e.g. AAPL.", show_default=False)]
TickerFilter = Annotated[str | None, typer.Option("--ticker", help="Only this ticker.")]
Model = Annotated[str, typer.Option("--model", help="Model name, e.g. LSTM_v1.", show_default=False)]
ModelFilter = Annotated[str | None, typer.Option("--model", help="Only this model.")]
def real(option: str, help: str, *, finite: bool = True, check: Any = None, **kw: Any) -> Any:
    """A numeric option read by the one coercion of user numbers
    (:func:`perfledger.records.numbers.to_real`): ``nan``, ``inf``, ``1e400``, ``1e-400``,
    ``1_0``, ``abc`` and the empty text are one usage line naming the option and the value
    (exit 2). ``check(option, text)``, when given, reads the value instead, with its range
    (``--days``, ``--alpha``): the option's own name and the text typed are in the message,
    whose words for the range are the ones ``help`` says."""
    def parse(value: Any) -> float:
        if check is not None:
            return _usage(lambda: check(option, value))
        return _usage(lambda: to_real(option, value, text=True, finite=finite))

    return typer.Option(option, parser=parse, metavar="X", help=help, **kw)


def whole(option: str, help: str, minimum: int = 0, maximum: int = MAX_WHOLE, *, zero: str = "",
          even: bool = False, **kw: Any) -> Any:
    """A whole-number option read by :func:`perfledger.records.numbers.to_whole`: a value
    outside ``[minimum, maximum]``, past a 64-bit integer, ``1.5``, ``1_0`` or ``abc`` is one
    usage line (exit 2) saying the range the help says, in the same words. ``zero``: 0 is
    accepted too and means this (``--baseline 0``: all of them); ``even``: only even numbers."""
    words = whole_words(minimum, maximum)
    if even:
        words = f"an even {words.removeprefix('a ')}"
    if zero:
        words = f"0 ({zero}) or {words}"

    def parse(value: Any) -> int:
        def convert() -> int:
            n = to_whole(option, value, minimum=0 if zero else minimum, maximum=maximum, text=True,
                         words=words)
            if (zero and 0 < n < minimum) or (even and n % 2):
                raise ValidationError(f"{option}={shown(str(value).strip())} must be {words}",
                                      [(None, option, "out of range")])
            return n

        return _usage(convert)

    return typer.Option(option, parser=parse, metavar="N", help=f"{help} ({words}).", **kw)


def days_back(option: str, value: Any) -> float:
    """``--days``: the library's own rule for ``days_back`` (one rule, one set of words),
    named as the option."""
    return check_days_back(option, value, text=True)


def _usage(convert: Any) -> Any:
    """``convert()``, its ValidationError raised as Click's usage error: one ``Error:`` line
    naming the option and the value, exit 2 (raised as is, not as a ValueError, which Typer's
    parser plumbing would prefix with "Value error,")."""
    try:
        return convert()
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from None


Days = Annotated[float | None, real(
    "--days", f"Only the last N days ({DAYS_WORDS.format(most='about 739,000')}).", check=days_back)]
Format = Annotated[OutputFormat, typer.Option("--format", help="Output format.")]
AtLeast = Annotated[
    list[str] | None, typer.Option("--min", metavar="NAME=X", help="Keep rows with NAME >= X (repeatable).")
]
AtMost = Annotated[
    list[str] | None, typer.Option("--max", metavar="NAME=X", help="Keep rows with NAME <= X (repeatable).")
]
Metrics = Annotated[
    list[str] | None, typer.Option("--metric", metavar="NAME=X", help="Custom metric NAME=X (repeatable).")
]
Params = Annotated[
    list[str] | None,
    typer.Option("--param", metavar="K=V", help="Parameter K=V, V parsed as JSON if valid (repeatable)."),
]
Tags = Annotated[list[str] | None, typer.Option("--tag", metavar="K=V", help="Tag K=V (repeatable).")]
ParamFilter = Annotated[
    list[str] | None,
    typer.Option("--param", metavar="K=V",
                 help="Only records whose param K equals V, V parsed as JSON if valid (6 a number, "
                      "'\"6\"' a string; repeatable)."),
]
TagFilter = Annotated[
    list[str] | None, typer.Option("--tag", metavar="K=V", help="Only records tagged K=V (repeatable).")
]
By = Annotated[
    str,
    typer.Option("--by", metavar="model|param:NAME|tag:NAME",
                 help="Rank models, or the values of a param or tag (e.g. param:max_depth)."),
]


def pairs(items: list[str] | None, option: str) -> list[tuple[str, str]]:
    """``["a=1", "b=x"]`` as ``[("a", "1"), ("b", "x")]``; anything without ``=`` fails."""
    out = []
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"{option} {item!r} must be NAME=VALUE")
        out.append((key.strip(), value))
    return out


def numbers(items: list[str] | None, option: str) -> dict[str, float]:
    """``NAME=X`` items as ``{NAME: X}``, each X read by the one coercion of user numbers; a
    value that is not a finite number fails with one line naming the option, NAME and X."""
    out = {}
    for key, value in pairs(items, option):
        try:
            out[key] = to_real(f"{option} {key}", value, text=True)
        except ValidationError as exc:
            fail(str(exc))
    return out


def json_values(items: list[str] | None, option: str) -> dict[str, Any]:
    """``K=V`` items as a dict, each V parsed as JSON when it is valid JSON, else kept as text;
    text that reads as a number without being one (``1_0``, ``.5``, ``nan``) and numbers a
    float64 cannot hold (``1e400``) fail, quoting the text typed
    (:func:`perfledger.records.typed.json_from_text`)."""
    out: dict[str, Any] = {}
    for key, value in pairs(items, option):
        try:
            out[key] = json_from_text(f"{option} {key}", value)
        except ValidationError as exc:
            fail(str(exc))
    return out


def label_filters(
    param: list[str] | None, tag: list[str] | None
) -> tuple[dict[str, Any] | None, dict[str, str] | None]:
    """``--param``/``--tag`` filters as the library's ``params=``/``tags=``: param values as
    JSON when valid (a JSON array as a tuple, which matches it), tag values as text, exactly
    as ``log`` stores them."""
    params = {k: _hashable(v) for k, v in json_values(param, "--param").items()}
    tags = dict(pairs(tag, "--tag"))
    return params or None, tags or None


def _hashable(value: Any) -> Any:
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value
