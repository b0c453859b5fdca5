"""Parsing the sidebar log form's free-text fields: custom metrics, params and tags.

People type ``sortino=2.4, latency_ms=35`` (commas or new lines between entries); a field
that does not parse is refused with a :class:`~perfledger.ValidationError` naming it, and
nothing is logged. The values then go through the Ledger's own validation like any call.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import ValidationError
from ..records.numbers import to_real
from ..records.typed import json_from_text

_SPLIT = re.compile(r"[\n,;]+")


def _entries(text: str | None, field: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for raw in _SPLIT.split(text or ""):
        item = raw.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"{field}: {item!r} must be name=value", [(None, field, item)])
        out.append((key.strip(), value.strip()))
    return out


def parse_metrics(text: str | None) -> dict[str, float]:
    """``"sortino=2.4, latency_ms=35"`` → ``{"sortino": 2.4, "latency_ms": 35.0}``."""
    out: dict[str, float] = {}
    for key, value in _entries(text, "metrics"):
        out[key] = to_real(f"metrics[{key!r}]", value, text=True)  # the one coercion of numbers
    return out


def parse_params(text: str | None) -> dict[str, Any]:
    """``"epochs=50, layers=[64, 32]"`` → values parsed as JSON when they are JSON, else kept
    as text (``optimizer=adam`` → ``"adam"``). Commas inside brackets or quotes stay."""
    out: dict[str, Any] = {}
    for key, value in _entries(_protect(text), "params"):
        # JSON when it is JSON; text that reads as a number without being one is refused
        # (the command line's --param reads it alike: records.typed)
        out[key] = json_from_text(f"params[{key!r}]", _restore(value))
    return out


def parse_tags(text: str | None) -> dict[str, str]:
    """``"run=nightly, data=2015-2024"`` → string tags."""
    return dict(_entries(text, "tags"))


_COMMA = "\x1f"


def _protect(text: str | None) -> str:
    """Commas inside [...], {...} or quotes are part of a JSON value, not separators."""
    out, depth, quote = [], 0, False
    for ch in text or "":
        if ch == '"':
            quote = not quote
        elif not quote and ch in "[{":
            depth += 1
        elif not quote and ch in "]}":
            depth = max(depth - 1, 0)
        out.append(_COMMA if ch == "," and (depth or quote) else ch)
    return "".join(out)


def _restore(value: str) -> str:
    return value.replace(_COMMA, ",")


#: The log form's widget key for each field a ValidationError may name.
_FIELD_KEYS = {"model_name": "log_model", "ticker": "log_ticker", "notes": "log_notes",
               "metrics": "log_metrics", "params": "log_params", "tags": "log_tags"}


def field_key(field: str) -> str:
    """The log form's widget key for a problem's field (``sharpe`` → ``log_sharpe``,
    ``params['a']`` → ``log_params``), so the message is shown beside that field."""
    base = field.split("[", 1)[0]
    return _FIELD_KEYS.get(base, f"log_{base}")
