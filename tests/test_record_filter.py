"""The filters ``Ledger.history``, ``count`` and ``returns_frame`` share are defined once
(:class:`perfledger.records.filters.RecordFilter`): each method's signature is checked
against it at import, so they cannot drift apart, and the public call signatures stay
what users call (positional ticker, model_name, days_back, since, until)."""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Mapping
from typing import Any

import pytest

from perfledger import Ledger, ValidationError
from perfledger.records.filters import FIELDS, POSITIONAL, RecordFilter, shares_filters

SHARING = (Ledger.history, Ledger.count, Ledger.returns_frame)


@pytest.mark.parametrize("method", SHARING, ids=lambda m: m.__name__)
def test_each_method_spells_every_filter_as_the_one_definition(method: Any) -> None:
    params = inspect.signature(method).parameters
    positional = [n for n, p in params.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert positional[:6] == ["self", *POSITIONAL]
    for field in dataclasses.fields(RecordFilter):
        assert params[field.name].default is None
        assert str(params[field.name].annotation) == str(field.type)
    assert set(FIELDS) == {"ticker", "model_name", "days_back", "since", "until", "params", "tags",
                           "at_least", "at_most"}


def test_a_method_that_drifts_fails_at_definition() -> None:
    with pytest.raises(TypeError, match=re.escape("filter 'ticker' must be `ticker: str | Sequence")):
        @shares_filters
        def history(self: Any, ticker: str | None = None, model_name: Any = None, days_back: Any = None,
                    since: Any = None, until: Any = None, *, params: Mapping[str, Any] | None = None,
                    at_least: Any = None, at_most: Any = None) -> None: ...
    with pytest.raises(TypeError, match="filter 'at_most' must be keyword-only"):
        shares_filters(_with_at_most_positional())
    with pytest.raises(TypeError, match="must come first"):
        @shares_filters
        def count(self: Any, model_name: Any = None, ticker: Any = None) -> None: ...


def test_the_three_agree_on_what_the_filters_select(tmp_path: Any) -> None:
    """The same filters, by position and keyword, select the same evaluations in each, and
    a bad one is the same ValidationError naming it in each."""
    import numpy as np
    import pandas as pd

    with Ledger(tmp_path / "l") as led:
        dates = pd.date_range("2025-01-01", periods=10, freq="B", tz="UTC")
        for i, (model, depth) in enumerate((("A", 3), ("A", 6), ("B", 6))):
            led.log_backtest(model, "T", pd.Series(np.linspace(-0.01, 0.02 + i / 100, 10), index=dates),
                             params={"max_depth": depth}, tags={"run": "n"}, timestamp=f"2025-03-0{i + 1}")
        led.log("A", "U", sharpe=1.0, timestamp="2025-03-05")
        args = ("T", ["A", "B"], None, "2025-03-01", "2025-03-04")
        kw: dict[str, Any] = {"params": {"max_depth": 6}, "tags": {"run": "n"}, "at_least": {"sharpe": -10}}
        hist = led.history(*args, **kw, include_meta=True)
        assert list(hist["model_name"]) == ["A", "B"] and led.count(*args, **kw) == 2
        assert list(led.returns_frame(*args, **kw).columns) == list(hist["record_id"])
        for method in (led.history, led.count, led.returns_frame):
            with pytest.raises(TypeError, match="model_name"):
                method("T", 5)  # one TypeError naming it in each
            with pytest.raises(ValidationError, match="at_most"):
                method(at_most={"sharpe": "x"})



def _with_at_most_positional() -> Any:
    """``Ledger.count``'s signature with ``at_most`` given by position too."""
    sig = inspect.signature(Ledger.count)
    params = [p for p in sig.parameters.values() if p.name != "at_most"]
    at_most = sig.parameters["at_most"].replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD)
    at = next(i for i, p in enumerate(params) if p.kind is p.KEYWORD_ONLY)

    def count(*args: Any, **kwargs: Any) -> None: ...

    count.__signature__ = sig.replace(parameters=[*params[:at], at_most, *params[at:]])  # type: ignore[attr-defined]
    return count
