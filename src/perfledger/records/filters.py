"""The filters that select evaluations, defined once: :class:`RecordFilter`.

``Ledger.history``, ``count`` and ``returns_frame`` take the same filters (ticker,
model_name, days_back, since, until, params, tags, at_least, at_most) as plain keyword
arguments, which users and IDEs read in each signature. Written out three times they could
drift apart (a new filter added to one, a default changed in another), so each of those
methods is marked :func:`shares_filters`, which checks at import that its signature spells
every filter as :class:`RecordFilter` does (name, place, default and type), and builds the
filter with :meth:`RecordFilter.of`; the checks every filter needs run in
:meth:`RecordFilter.checked`, in one place.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from .arguments import check_bounds, check_names
from .labels import check_filter
from .timestamps import time_window

F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class RecordFilter:
    """Which evaluations: ``ticker``/``model_name`` one name or a list; ``days_back`` (exact:
    now minus that many days) or ``since``/``until`` (datetimes or ISO strings);
    ``params``/``tags`` every given key with an equal value; ``at_least``/``at_most`` bounds
    on metric values (custom ones too)."""

    ticker: str | Sequence[str] | None = None
    model_name: str | Sequence[str] | None = None
    days_back: float | None = None
    since: Any = None
    until: Any = None
    params: Mapping[str, Any] | None = None
    tags: Mapping[str, str] | None = None
    at_least: Mapping[str, float] | None = None
    at_most: Mapping[str, float] | None = None

    @classmethod
    def of(cls, arguments: Mapping[str, Any]) -> RecordFilter:
        """The filter among a method's ``arguments`` (its ``locals()``), the rest ignored."""
        return cls(**{name: arguments[name] for name in FIELDS})

    def checked(self) -> dict[str, Any]:
        """Every filter validated (a ValidationError names the argument and the value), as
        the store's history query takes them: tickers, models, since_us, until_us, params,
        tags, at_least, at_most."""
        since_us, until_us = time_window(self.days_back, self.since, self.until)
        return {
            "tickers": check_names("ticker", self.ticker),
            "models": check_names("model_name", self.model_name),
            "since_us": since_us,
            "until_us": until_us,
            "params": check_filter("params", self.params),
            "tags": check_filter("tags", self.tags),
            "at_least": check_bounds("at_least", self.at_least),
            "at_most": check_bounds("at_most", self.at_most),
        }


FIELDS = tuple(f.name for f in dataclasses.fields(RecordFilter))
#: The filters a caller may give by position, in this order, after ``self``.
POSITIONAL = ("ticker", "model_name", "days_back", "since", "until")


def shares_filters(method: F) -> F:
    """``method`` unchanged, once its signature is checked to spell every filter of
    :class:`RecordFilter` the same way: same name, default and type, the first five by
    position in their order, the others by keyword. A method that drifts fails at import."""
    params = inspect.signature(method).parameters
    fields = {f.name: f for f in dataclasses.fields(RecordFilter)}
    positional = [p for p in params.values() if p.kind is p.POSITIONAL_OR_KEYWORD][1:]  # after self
    if [p.name for p in positional[: len(POSITIONAL)]] != list(POSITIONAL):
        raise TypeError(f"{method.__qualname__}: the filters {POSITIONAL} must come first, in order")
    for name, field in fields.items():
        param = params.get(name)
        if param is None or param.default != field.default or str(param.annotation) != str(field.type):
            raise TypeError(f"{method.__qualname__}: filter {name!r} must be `{name}: {field.type} = "
                            f"{field.default!r}`, as in RecordFilter")
        if name not in POSITIONAL and param.kind is not param.KEYWORD_ONLY:
            raise TypeError(f"{method.__qualname__}: filter {name!r} must be keyword-only")
    return method
