"""The rules that keep wrong records out of the ledger.

Validation lives here, in one place, because a bad value stored once poisons every "best
model" answer after it: ``win_rate=68`` (a percentage) would beat every honest fraction
forever. Each rule is written once as data (:data:`BOUNDS`) and applied by two checkers:
:func:`validate_record` for one ``log()`` call (cheap, no pandas) and
:func:`validate_frame` for a batch (vectorised, every bad row reported at once).
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError, WrongTypeError
from .numbers import MagnitudeError, shown, to_real
from .record import CORE_METRICS, RESERVED_NAMES, SEED_FIELDS, Record
from .timestamps import MAX_TS, MIN_TS, now_us, parse_timestamp, to_us

if TYPE_CHECKING:
    import pandas as pd

#: (low, high, hint) per bounded metric; ``hint`` turns a likely unit mistake into a suggestion.
BOUNDS: dict[str, tuple[float | None, float | None, str]] = {
    "win_rate": (0.0, 1.0, "fraction"),
    "accuracy": (0.0, 1.0, "fraction"),
    "mse": (0.0, None, ""),
    "drawdown": (None, 0.0, "negate"),
}
#: The magnitudes a metric may have: 0, or between MIN_MAGNITUDE and MAX_MAGNITUDE. The
#: derived statistics (running mean, sum of squared deviations, min/max) of such values stay
#: finite and representable for any number of records: squares of differences lie between
#: ~1e-232 and 4e200, so they neither overflow nor underflow (PostgreSQL raises on both), and
#: no sequence of valid logs can make a later one fail. No real measurement is outside them.
MAX_MAGNITUDE = 1e100
MIN_MAGNITUDE = 1e-100
#: A fraction from here to 100 (``win_rate=55``) is plainly a percentage: its message
#: suggests the fraction (0.55). Below it (``1.5``) the mistake is not plain: no value is.
PERCENT_HINT_FROM = 2.0
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_LABEL_LEN = 200


def _fail(fieldname: str, message: str) -> ValidationError:
    return ValidationError(message, [(None, fieldname, message)])


def check_label(fieldname: str, value: Any) -> str:
    """Ticker and model names: non-blank, printable, no surrounding spaces, stored verbatim
    (``BRK.B``, ``^GSPC``, ``EURUSD=X`` are all fine)."""
    if not isinstance(value, str):
        raise TypeError(f"{fieldname} must be a str, got {type(value).__name__} {value!r}")
    if not value.strip():
        raise _fail(fieldname, f"{fieldname}={value!r} is blank")
    if _CONTROL_RE.search(value):
        raise _fail(fieldname, f"{fieldname}={value!r} contains a control character")
    if value != value.strip():
        raise _fail(
            fieldname,
            f"{fieldname}={value!r} has leading or trailing spaces; did you mean {value.strip()!r}?",
        )
    if len(value) > MAX_LABEL_LEN:
        raise _fail(fieldname, f"{fieldname} is {len(value)} characters long (at most {MAX_LABEL_LEN})")
    _check_utf8(fieldname, value)
    return value


def _check_utf8(fieldname: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _fail(fieldname, f"{fieldname} is not valid Unicode text (lone surrogate)") from None


def bound_message(name: str, value: float) -> str | None:
    """The message for a value outside its metric's bounds, or None when it is inside."""
    low, high, hint = BOUNDS.get(name, (None, None, ""))
    if (low is not None and value < low) or (high is not None and value > high):
        rng = f"[{low:g}, {high:g}]" if low is not None and high is not None else (
            f">= {low:g}" if low is not None else f"<= {high:g}"
        )
        msg = f"{name}={value!r} is out of range: {name} must be {rng}"
        # A hint is offered only where the value it suggests is one the metric may hold
        # (a percentage of at most 100; a drawdown of at most a total loss), and only where
        # the mistake is plain: from 2 to 100 a fraction was written as a percentage (55 for
        # 0.55); between 1 and 2 (1.5) it may as well be a slip of the point (0.15), so no
        # value is suggested there, only the rule.
        if hint == "fraction":
            msg += ", a fraction (0.55 means 55%)"
            if PERCENT_HINT_FROM <= value <= 100 and _may_hold(name, value / 100):
                msg += f"; read as a percentage, did you mean {value / 100:g}?"
        elif hint == "negate" and 0 < value <= 1 and _may_hold(name, -value):
            msg += f" (a loss from the peak); did you mean {-value:g}?"
        elif hint == "negate":
            msg += " (a loss from the peak)"
        return msg
    return None


def _may_hold(name: str, value: float) -> bool:
    low, high, _ = BOUNDS.get(name, (None, None, ""))
    return ((low is None or value >= low) and (high is None or value <= high)
            and magnitude_message(name, value) is None)


def check_metric(name: str, value: Any) -> float | None:
    """A metric is None or a finite real number (through :func:`.numbers.to_real`, the one
    coercion); bools and strings are :class:`.numbers.NotANumberError` (also a TypeError)."""
    if value is None:
        return None
    if type(value) is float and math.isfinite(value):
        f = value
    else:
        try:
            f = to_real(name, value)
        except MagnitudeError as exc:  # 1e400 or 1e-400: the metric's range, as for 1e200 or 1e-200
            raise _fail(name, magnitude_words(name, exc.text, too_large=exc.too_large)) from None
    msg = magnitude_message(name, f) or bound_message(name, f)
    if msg:
        raise _fail(name, msg)
    return f


def magnitude_message(name: str, value: float) -> str | None:
    """The message for a value outside the storable magnitudes (see :data:`MAX_MAGNITUDE`), or None."""
    if abs(value) > MAX_MAGNITUDE:
        return magnitude_words(name, repr(value), too_large=True)
    if 0 < abs(value) < MIN_MAGNITUDE:
        return magnitude_words(name, repr(value), too_large=False)
    return None


def magnitude_words(name: str, text: str, *, too_large: bool) -> str:
    """One message for a metric outside the storable magnitudes, whether a float64 could hold
    the value (``1e200``, ``1e-200``) or not (``1e400``, ``Decimal("1e-400")``)."""
    if too_large:
        return f"{name}={text} is too large in magnitude: metrics must be within ±{MAX_MAGNITUDE:g}"
    return (f"{name}={text} is too small in magnitude: a metric other than 0 must be at "
            f"least {MIN_MAGNITUDE:g} in magnitude (pass 0 if you mean zero)")


def check_metric_name(name: Any, fieldname: str = "metrics") -> str:
    what = "name" if fieldname == "name" else f"{fieldname} name"  # never "name name 'x'"
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str, got {type(name).__name__} {name!r}")
    if not _NAME_RE.fullmatch(name):
        raise _fail(fieldname, f"{what} {name!r} is not an identifier (letters, digits, _; at most 64)")
    if name in RESERVED_NAMES:
        raise _fail(
            fieldname,
            f"{what} {name!r} is reserved; pass core metrics as keyword arguments",
        )
    return name


def check_custom_metrics(metrics: Any) -> dict[str, float]:
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must be a mapping of name to number, got {type(metrics).__name__}")
    out: dict[str, float] = {}
    for name, value in metrics.items():
        check_metric_name(name)
        v = check_metric(f"metrics[{name!r}]", value)
        if v is not None:
            out[name] = v
    return out


def check_json_map(fieldname: str, value: Any, *, str_values: bool = False) -> dict[str, Any]:
    """Params and tags: a mapping with str keys whose values survive a JSON round trip."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{fieldname} must be a mapping, got {type(value).__name__} {value!r}")
    out: dict[str, Any] = {}
    for k, v in value.items():
        if not isinstance(k, str):
            raise TypeError(f"{fieldname} keys must be str, got {type(k).__name__} {k!r}")
        if not k:
            raise _fail(fieldname, f"{fieldname} has an empty key (a key no filter could name)")
        if str_values and not isinstance(v, str):
            msg = f"{fieldname}[{k!r}] must be a str, got {type(v).__name__} {shown(v)}"
            raise WrongTypeError(msg, [(None, f"{fieldname}[{k!r}]", msg)])
        try:
            json.dumps(v, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise _fail(
                f"{fieldname}[{k!r}]", f"{fieldname}[{k!r}]={shown(v)} is not JSON-serialisable: "
                + ("it is nested too deeply" if isinstance(exc, RecursionError) else str(exc))
            ) from None
        text = json.dumps(v, ensure_ascii=False)
        _check_utf8(f"{fieldname}[{k!r}]", text)
        try:
            nul = "\x00" in k or has_nul(v)
        except RecursionError:  # arrays inside arrays a thousand deep: no parameter is that
            raise _fail(f"{fieldname}[{k!r}]", f"{fieldname}[{k!r}] is nested too deeply") from None
        if nul:  # JSONB (PostgreSQL) cannot hold one, so no store accepts it: ledgers stay copyable
            raise _fail(f"{fieldname}[{k!r}]", f"{fieldname}[{k!r}]={shown(v)} contains a NUL character")
        out[k] = v
    _check_utf8(fieldname, json.dumps(list(out), ensure_ascii=False))
    return out


def has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    return False


def check_notes(notes: Any) -> str:
    if notes is None:
        return ""
    if not isinstance(notes, str):
        raise TypeError(f"notes must be a str, got {type(notes).__name__} {notes!r}")
    _check_utf8("notes", notes)
    if "\x00" in notes:  # PostgreSQL text cannot hold one: refused on every store, as in params
        raise _fail("notes", f"notes={notes[:60]!r} contains a NUL character")
    return notes


def validate_record(
    model_name: Any,
    ticker: Any,
    *,
    sharpe: Any = None,
    mse: Any = None,
    drawdown: Any = None,
    total_return: Any = None,
    win_rate: Any = None,
    accuracy: Any = None,
    notes: Any = "",
    metrics: Any = None,
    params: Any = None,
    tags: Any = None,
    timestamp: Any = None,
) -> Record:
    """Check one evaluation and return it as a :class:`Record`, or raise naming the field.
    (Each field checked in a straight line: every ``log()`` runs this.)"""
    return Record(
        model_name=check_label("model_name", model_name),
        ticker=check_label("ticker", ticker),
        ts_us=now_us() if timestamp is None else parse_timestamp(timestamp),
        notes=check_notes(notes),
        metrics=check_custom_metrics(metrics),
        params=check_json_map("params", params),
        tags=check_json_map("tags", tags, str_values=True),
        sharpe=check_metric("sharpe", sharpe),
        mse=check_metric("mse", mse),
        drawdown=check_metric("drawdown", drawdown),
        total_return=check_metric("total_return", total_return),
        win_rate=check_metric("win_rate", win_rate),
        accuracy=check_metric("accuracy", accuracy),
    )


# --------------------------------------------------------------------------- batch checks


def validate_frame(frame: pd.DataFrame, *, max_listed: int = 50) -> pd.DataFrame:
    """Validate a batch and return it normalised (a ``ts_us`` column, float metrics).

    Metric columns are checked with vectorised numpy; only labels, notes and the
    dict-valued ``metrics``/``params``/``tags`` columns, when present, are checked per row.
    Every problem is collected, then one :class:`ValidationError` lists them by row index
    (the frame's own index) and field, so a user fixes a whole file in one pass.
    """
    import numpy as np
    import pandas as pd

    problems: list[tuple[Any, str, str]] = []
    n = len(frame)
    index = list(frame.index)
    out = pd.DataFrame(index=frame.index)

    def add(rows: Any, fieldname: str, message_for: Any) -> None:
        for pos in rows:
            problems.append((index[pos], fieldname, message_for(pos)))

    # Two columns of one name: which value is meant is anyone's guess, so the batch is refused.
    if dup := list(dict.fromkeys(frame.columns[frame.columns.duplicated()])):
        raise ValidationError(f"the batch has duplicated column(s) {', '.join(map(repr, dup))}; give "
                              "each column once", [(None, str(c), "duplicated column") for c in dup])
    # A "returns" column of numbers is a custom metric like any other extra numeric column
    # (a total return, say); only a column of sequences is the kept return series.
    series = "returns" in frame.columns and returns_column_is_series(frame["returns"])
    unknown = [c for c in frame.columns if c not in (*SEED_FIELDS, "metrics", "params", "tags")
               and not (c == "returns" and series)]
    for col in ("model_name", "ticker"):
        if col not in frame.columns:
            raise ValidationError(f"the batch has no {col!r} column", [(None, col, "missing")])
        values = _text_column(frame[col])
        for pos, msg in _check_distinct(values, lambda v, col=col: check_label(col, v)):
            problems.append((index[pos], col, msg))
        out[col] = values

    for m in (*CORE_METRICS, *unknown):
        if m not in frame.columns:
            if m in CORE_METRICS:
                out[m] = np.full(n, np.nan)
            continue
        if m in unknown:
            try:
                check_metric_name(m, "column")
            except ValidationError as exc:
                raise ValidationError(str(exc), [(None, m, str(exc))]) from None
        col = frame[m]
        if col.dtype.kind in "fiu":
            arr = col.to_numpy(dtype=float)
            # A NaN in a float column is how pandas spells a missing value: treat it as None.
            # Infinity is never a measurement.
            bad_inf = np.isinf(arr)
            add(np.flatnonzero(bad_inf), m, lambda p, m=m, a=arr: f"{m}={a[p]!r} is not a finite number")
        else:
            arr = np.full(n, np.nan)
            # Row by row, without pd.isna: it raises on Decimal("sNaN") (InvalidOperation).
            for pos, v in enumerate(col.to_numpy(dtype=object).tolist()):
                if _missing(v):
                    continue
                try:
                    arr[pos] = check_metric(m, v)
                except (ValidationError, TypeError) as exc:
                    problems.append((index[pos], m, str(exc)))
        low, high, _ = BOUNDS.get(m, (None, None, ""))
        finite = np.isfinite(arr)
        bad = np.zeros(n, dtype=bool)
        with np.errstate(invalid="ignore"):
            if low is not None:
                bad |= finite & (arr < low)
            if high is not None:
                bad |= finite & (arr > high)
        if col.dtype.kind in "fiu":
            with np.errstate(invalid="ignore"):
                size = np.abs(arr)
                huge = finite & ((size > MAX_MAGNITUDE) | ((size > 0) & (size < MIN_MAGNITUDE)))
            add(np.flatnonzero(huge), m, lambda p, m=m, a=arr: magnitude_message(m, float(a[p])) or "")
            bad &= ~huge
            add(np.flatnonzero(bad), m, lambda p, m=m, a=arr: bound_message(m, float(a[p])) or "")
        arr = np.where(np.isfinite(arr), arr, np.nan)
        out[m] = arr

    if "timestamp" in frame.columns and frame["timestamp"].notna().any():
        out["ts_us"] = _timestamps_us(frame["timestamp"], index, problems)
    else:
        out["ts_us"] = np.full(n, now_us(), dtype=np.int64)

    if "notes" in frame.columns:
        notes = _text_column(frame["notes"].fillna(""))
        for pos, msg in _check_distinct(notes, check_notes):
            problems.append((index[pos], "notes", msg))
        out["notes"] = notes
    else:
        out["notes"] = np.full(n, "", dtype=object)

    checkers = {
        "metrics": check_custom_metrics,
        "params": lambda v: check_json_map("params", v),
        "tags": lambda v: check_json_map("tags", v, str_values=True),
    }
    for col, checker in checkers.items():
        if col not in frame.columns:
            out[col] = [{}] * n
            continue
        cleaned = []
        for pos, v in enumerate(frame[col].tolist()):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                cleaned.append({})
                continue
            try:
                cleaned.append(checker(v))
            except (ValidationError, TypeError) as exc:
                problems.append((index[pos], col, str(exc)))
                cleaned.append({})
        out[col] = cleaned

    if series:  # a backtest's return series, kept (records.kept_returns)
        from .kept_returns import KeptReturns, keep_returns

        kept: list[KeptReturns | None] = []
        for pos, v in enumerate(frame["returns"].tolist()):
            if _missing(v):
                kept.append(None)
                continue
            if is_plain_number(v):
                problems.append((index[pos], "returns", (
                    f"returns={v!r} is a number in a column of return series: a 'returns' column "
                    "holds each row's series (a list, array or Series), or numbers only (then it "
                    "is a custom metric named 'returns'), not both")))
                kept.append(None)
                continue
            try:
                kept.append(v if isinstance(v, KeptReturns) else keep_returns(v))
            except (ValidationError, TypeError) as exc:
                problems.append((index[pos], "returns", str(exc)))
                kept.append(None)
        out["returns"] = kept
    if unknown:  # a custom metric given as a column and inside metrics: which one is meant?
        for pos, base in enumerate(out["metrics"].tolist()):
            for name in unknown:
                given = out[name].iat[pos]
                if name in base and not math.isnan(given):
                    problems.append((index[pos], name, (
                        f"metric {name!r} is given twice, as a column ({given!r}) and in metrics "
                        f"({base[name]!r}); give it once")))
    if problems:
        problems.sort(key=lambda p: (str(type(p[0])), p[0] if p[0] is not None else -1))
        listed = "\n".join(f"  row {r}: {msg}" for r, _f, msg in problems[:max_listed])
        more = f"\n  ... and {len(problems) - max_listed} more" if len(problems) > max_listed else ""
        raise ValidationError(
            f"{len(problems)} problem(s) in the batch; nothing was stored:\n{listed}{more}",
            problems,
        )
    # Custom metric columns of the frame are folded into each row's metrics dict.
    if unknown:
        extra = out[unknown].to_numpy(dtype=float)
        merged = []
        for pos, base in enumerate(out["metrics"].tolist()):
            row = {name: float(extra[pos, j]) for j, name in enumerate(unknown)
                   if not math.isnan(extra[pos, j])}
            merged.append({**row, **base} if row else base)
        out["metrics"] = merged
        out = out.drop(columns=unknown)
    return out


def is_plain_number(value: Any) -> bool:
    """A single number (not a bool, not a sequence): what a metric cell holds."""
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def returns_column_is_series(column: pd.Series) -> bool:
    """Whether a batch's ``returns`` column holds return series to keep: not when it is
    numeric, or when every value it holds is a single number (or missing): then it is a
    custom metric named ``returns`` (a scalar total return, say), as any extra numeric
    column is, and is never read as a series."""
    if column.dtype.kind in "fiub":
        return False
    return not all(_missing(v) or is_plain_number(v) for v in column.tolist())


def _missing(value: Any) -> bool:
    """A batch cell that holds no value: None, pandas' NA/NaT, or NaN (how a DataFrame spells
    an empty cell; rows given as dicts have their NaNs refused first, see :func:`refuse_nan`)."""
    import pandas as pd

    return (value is None or value is pd.NA or value is pd.NaT
            or (isinstance(value, float) and math.isnan(value)))


def refuse_nan(rows: list[Any]) -> None:
    """Rows given as dicts follow ``log()``'s rule: ``None`` is "not measured", a NaN is a
    value that is not a number, refused (a DataFrame cannot tell the two apart, so this runs
    before one is built). One :class:`ValidationError` lists every such cell."""
    problems = []
    for pos, row in enumerate(rows):
        if not isinstance(row, Mapping):
            continue
        for key, value in row.items():
            if isinstance(value, float) and math.isnan(value):  # log() refuses a NaN anywhere
                problems.append((pos, str(key), f"{key}={value!r} is not a finite number (pass None "
                                                "for a value that is missing)"))
    if problems:
        listed = "\n".join(f"  row {r}: {msg}" for r, _f, msg in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        raise ValidationError(
            f"{len(problems)} problem(s) in the batch; nothing was stored:\n{listed}{more}", problems)


def _text_column(col: pd.Series) -> Any:
    """A text column as it will be stored: a column of strings stays in its (Arrow) array,
    checked and kept without a Python object per row; any other becomes an object array."""
    import pandas as pd

    if isinstance(col.dtype, pd.StringDtype):
        return col.array
    return col.to_numpy(dtype=object)


def _check_distinct(values: Any, check: Any) -> list[tuple[int, str]]:
    """Run ``check`` once per distinct value (tickers and models repeat a lot) and map
    failures back to row positions."""
    import pandas as pd

    try:
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
    except TypeError:  # unhashable values (lists, dicts): check row by row
        codes, uniques = list(range(len(values))), list(values)
    bad: dict[int, str] = {}
    for code, value in enumerate(uniques):
        try:
            check(value)
        except (ValidationError, TypeError) as exc:
            bad[code] = str(exc)
    if not bad:
        return []
    return [(pos, bad[c]) for pos, c in enumerate(codes) if c in bad]


#: Timestamp text that pandas' ISO 8601 reader and :func:`datetime.fromisoformat` (the one
#: parser, :func:`.timestamps.parse_timestamp`) read to the same microsecond.
_PLAIN_ISO = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?(?:Z|[+-]\d{2}:\d{2})?"


def _timestamps_us(col: pd.Series, index: list[Any], problems: list[tuple[Any, str, str]]) -> Any:
    """A timestamp column as UTC microseconds, vectorised; naive values are UTC, missing ones
    are now. Unparseable or out-of-range values are reported by row."""
    import numpy as np
    import pandas as pd

    missing = pd.isna(col).to_numpy()
    # A bare number is ambiguous (seconds? milliseconds?): rejected, as log() rejects it.
    if col.dtype.kind == "M":  # already datetimes: nothing to look at row by row
        numeric = np.zeros(len(col), dtype=bool)
    elif col.dtype.kind in "biuf":
        numeric = ~missing
    else:
        numeric = np.array(
            [isinstance(v, numbers.Number) and not (isinstance(v, float) and math.isnan(v))
             for v in col.tolist()],
            dtype=bool,
        )
    orig = col
    if numeric.any():
        col = col.where(~numeric, None)
    try:
        if col.dtype.kind == "M":
            parsed = pd.to_datetime(col, utc=True)
        else:
            parsed = pd.to_datetime(col.astype(object), utc=True, format="ISO8601", errors="coerce")
    except (TypeError, ValueError):
        parsed = pd.Series(pd.NaT, index=col.index, dtype="datetime64[us, UTC]")
    us = parsed.dt.as_unit("us").astype("int64").to_numpy().copy()
    lo, hi = to_us(MIN_TS), to_us(MAX_TS)
    nat = parsed.isna().to_numpy()
    missing = missing & ~numeric
    # One parser for log(), log_many() and import: pandas' vectorised reading is kept only for
    # text of the plain shape both read alike (_PLAIN_ISO); any other text (a week date, spaces
    # around it, an offset with seconds, "2024-01", which pandas alone would take) goes
    # through parse_timestamp, the parser of log(), and is accepted or refused as there.
    plain = np.ones(len(col), dtype=bool)
    if col.dtype.kind != "M":
        try:
            matched = col.astype(object).str.fullmatch(_PLAIN_ISO)
            plain = matched.where(matched.notna(), True).astype(bool).to_numpy()
        except AttributeError:  # no text at all (datetimes): pandas read every one
            pass
    again = (~plain | nat) & ~missing & ~numeric
    bad = numeric | (~nat & ~again & ((us < lo) | (us >= hi)))
    for pos in np.flatnonzero(again):
        try:
            us[pos] = parse_timestamp(orig.iloc[pos])
        except (ValidationError, TypeError) as exc:
            problems.append((index[pos], "timestamp", str(exc)))
            us[pos] = now_us()  # a placeholder: the batch is refused
    for pos in np.flatnonzero(bad):  # a bare number, or a time outside the ledger's range
        try:
            parse_timestamp(orig.iloc[pos])
            msg = f"timestamp={orig.iloc[pos]!r} could not be read"
        except (ValidationError, TypeError) as exc:
            msg = str(exc)
        problems.append((index[pos], "timestamp", msg))
    us = np.where(missing | bad, now_us(), us)
    return us.astype(np.int64)
