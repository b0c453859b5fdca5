"""Params and tags as values a query can find: how they compare, and the filters users pass.

A param's value is any JSON value, a tag's a string. Two values are the same when they are
the same JSON value: ``6`` matches a stored ``6`` or ``6.0`` (JSON has one number type, and
PostgreSQL's JSONB compares them equal too), never ``"6"``; ``true`` is not ``1``; arrays
compare element by element, in order; objects key by key. :func:`canonical` spells every
value one way, so equal values have equal text: the embedded store indexes that text (one
``pl_labels`` row per kind, key and value), and grouped leaderboards group by it.

Filter values must be hashable JSON values (str, int, float, bool, None, or a tuple of
them, which matches a JSON array), so a query can be a cache key; anything else is a
:class:`~perfledger.errors.ValidationError` naming the argument.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import json
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import ValidationError


class LabelKind(enum.StrEnum):
    """A label is a param or a tag; the value is the letter ``pl_labels.kind`` stores."""

    PARAM = "p"
    TAG = "t"

    @property
    def word(self) -> str:
        """``param`` or ``tag``: the ``by=`` prefix, and the word messages use."""
        return self.name.lower()

    @property
    def column(self) -> str:
        """The record column holding labels of this kind."""
        return "params" if self is LabelKind.PARAM else "tags"


#: ``by=`` prefixes → kinds.
KINDS = {kind.word: kind for kind in LabelKind}

#: One label: (kind, key, canonical JSON value).
Label = tuple[LabelKind, str, str]
#: What a leaderboard groups by besides the ticker: None for the model, else a param's or a
#: tag's key.
Grouping = tuple[LabelKind, str] | None


def _fail(fieldname: str, message: str) -> ValidationError:
    return ValidationError(message, [(None, fieldname, message)])


def number_text(value: float) -> str:
    """The one spelling of a finite float: a whole float as the integer JSONB keeps for it,
    any other float as Python's shortest round-trip ``repr`` (``0.1``, ``1.5e-07``, ``5e-324``).

    A whole float is written as JSON by its ``repr`` (``1e+23``), which PostgreSQL's JSONB
    keeps as the exact numeric 100000000000000000000000 and gives back as that integer. So a
    whole float is spelled as the exact decimal of its ``repr`` (``1e23`` →
    ``100000000000000000000000``, ``6.0`` → ``6``, ``-0.0`` → ``0``), not as its binary value
    ``int(1e23)`` = ``99999999999999991611392``, which no PostgreSQL ledger could ever match:
    a filter finds on PostgreSQL what it finds on SQLite, and a copy between them keeps it.
    Below 2**53 the two spellings are the same. Other floats come back from JSONB as the
    same float, so their ``repr`` is already engine-independent."""
    if not value.is_integer():
        return float.__repr__(value)
    if abs(value) < 2.0**53:
        return int.__repr__(int(value))
    from decimal import Decimal

    return format(Decimal(float.__repr__(value)), "f").split(".")[0]


def _plain(value: Any) -> Any:
    """``value`` with arrays as lists (floats are spelled by :func:`number_text`, through
    :data:`_ENCODER`)."""
    if value is None or isinstance(value, bool | str | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def canonical(value: Any) -> str:
    """The one spelling of a JSON value: keys sorted, no spaces, whole numbers without
    ``.0``. Equal JSON values, and only those, have equal canonical text."""
    kind = type(value)
    if kind is str:  # the common cases without json.dumps' set-up (a log() is ~1 ms)
        return _encode_str(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return number_text(value)
    return _ENCODER.encode(_plain(value))


_encode_str = json.encoder.encode_basestring  # what json.dumps(s, ensure_ascii=False) writes


class _Encoder(json.JSONEncoder):
    """JSON with floats spelled by :func:`number_text`, through the standard library's
    pure-Python encoder (the C encoder spells floats itself)."""

    def iterencode(self, o: Any, _one_shot: bool = False) -> Any:
        def floatstr(f: float, *_: Any) -> str:
            if not math.isfinite(f):
                raise ValueError(f"{f!r} is not a JSON number")
            return number_text(f)

        return json.encoder._make_iterencode(  # type: ignore[attr-defined]
            {}, self.default, _encode_str, self.indent, floatstr, self.key_separator,
            self.item_separator, self.sort_keys, self.skipkeys, _one_shot,
        )(o, 0)


_ENCODER = _Encoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)


def decode(text: str) -> Any:
    """A canonical value back as Python, arrays as tuples (hashable, and accepted as filters)."""
    return _tuples(json.loads(text))


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def sort_key(value: Any) -> tuple[int, Any]:
    """Orders values of mixed types: None, booleans, numbers, strings, arrays (element by
    element), objects."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, int | float):
        return (2, value)
    if isinstance(value, str):
        return (3, value)
    if isinstance(value, tuple | list):
        return (4, tuple(sort_key(v) for v in value))
    return (5, canonical(value))


@functools.lru_cache(maxsize=4096)
def digest(label: Label) -> str:
    """The unique key of a label in ``pl_labels`` (values and keys may be long)."""
    return hashlib.sha1("\x00".join(label).encode("utf-8", "surrogatepass")).hexdigest()


def collect(
    params: Sequence[Mapping[str, Any]], tags: Sequence[Mapping[str, str]]
) -> tuple[dict[Label, int], list[tuple[Label, ...]]]:
    """The labels of a batch: the record count of each label, and each record's labels.

    A sweep repeats a few combinations a million times, so the labels of a combination
    are worked out once: records with equal params and tags share one tuple."""
    per_record: list[tuple[Label, ...]] = []
    known: dict[Any, tuple[Label, ...]] = {}
    tally: dict[int, list[Any]] = {}
    for pos in range(max(len(params), len(tags))):
        p = params[pos] if pos < len(params) else None
        t = tags[pos] if pos < len(tags) else None
        key = _memo_key(p, t)
        labels = known.get(key) if key is not None else None
        if labels is None:
            labels = tuple((kind, k, canonical(v)) for kind, d in ((LabelKind.PARAM, p), (LabelKind.TAG, t))
                           if d for k, v in d.items())
            if key is not None:
                known[key] = labels
        per_record.append(labels)
        entry = tally.get(id(labels))
        if entry is None:
            tally[id(labels)] = [labels, 1]
        else:
            entry[1] += 1
    counts: dict[Label, int] = {}
    for labels, n in tally.values():
        for label in labels:
            counts[label] = counts.get(label, 0) + n
    return counts, per_record


def _memo_key(p: Mapping[str, Any] | None, t: Mapping[str, str] | None) -> Any:
    """A hashable key equal only for params/tags with the same canonical labels (types are
    part of it: ``True == 1`` in Python, not in JSON), or None for unhashable values."""
    try:
        key = (tuple(p.items()) if p else (), tuple(map(type, p.values())) if p else (),
               tuple(t.items()) if t else ())
        hash(key)
    except TypeError:
        return None
    return key


# --------------------------------------------------------------------------- user arguments


def _filter_value(where: str, value: Any) -> Any:
    """A param filter value as a plain hashable JSON value, or a ValidationError."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        if not math.isfinite(f):
            raise _fail(where, f"{where}={value!r} is not a finite number")
        return f
    if isinstance(value, tuple):
        return tuple(_filter_value(where, v) for v in value)
    if isinstance(value, list | dict | set | Mapping):
        raise _fail(
            where,
            f"{where}={value!r} is unhashable: filter values are str, numbers, bool, None or "
            "tuples (a tuple matches a JSON array, e.g. (64, 32))",
        )
    raise _fail(where, f"{where}={value!r} is not a JSON value ({type(value).__name__})")


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    return isinstance(value, tuple) and any(_has_nul(v) for v in value)


def check_filter(fieldname: str, value: Any) -> tuple[tuple[str, str], ...]:
    """``params=``/``tags=`` of a query as sorted (key, canonical value) pairs.

    Keys are non-empty strings; tag values are strings; param values are hashable JSON
    values (see :func:`_filter_value`). Anything else raises naming the argument."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise _fail(fieldname, f"{fieldname} must be a mapping of key to value, got "
                               f"{type(value).__name__} {value!r}")
    out: dict[str, str] = {}
    for key, v in value.items():
        if not isinstance(key, str) or not key:
            raise _fail(fieldname, f"{fieldname} keys must be non-empty str, got {key!r}")
        where = f"{fieldname}[{key!r}]"
        if fieldname == "tags" and not isinstance(v, str):
            raise _fail(where, f"{where} must be a str (tags are text), got {type(v).__name__} {v!r}")
        plain = _filter_value(where, v)
        text = canonical(plain)
        if "\x00" in key or _has_nul(plain):
            raise _fail(where, f"{where}={v!r} contains a NUL character")
        try:
            (key + text).encode("utf-8")
        except UnicodeEncodeError:
            raise _fail(where, f"{where} is not valid Unicode text (lone surrogate)") from None
        out[key] = text
    return tuple(sorted(out.items()))


def parse_by(by: Any) -> Grouping:
    """``by=`` of a leaderboard: None for ``"model"``, else (kind, key) for ``"param:NAME"``
    or ``"tag:NAME"``."""
    if isinstance(by, str):
        if by == "model":
            return None
        prefix, sep, name = by.partition(":")
        if sep and prefix in KINDS and name:
            return KINDS[prefix], name
    raise _fail("by", f"by={by!r} names nothing to group by: use 'model', 'param:NAME' or "
                      "'tag:NAME' (e.g. 'param:max_depth')")


def as_mapping(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Checked (key, canonical) pairs back as a ``{key: value}`` dict."""
    return {k: decode(v) for k, v in pairs}


#: Leaderboard column names a grouping value column must not take.
_TAKEN = ("rank", "ticker", "records")


def group_column(grouping: Grouping, known: Iterable[Sequence[Any]], by: str,
                 stats: Sequence[str]) -> str:
    """The leaderboard's group column for ``by`` (``model_name``, or the param/tag key —
    ``param:KEY`` when the key would clash with a leaderboard column); a ValidationError when
    ``by`` names no param or tag among ``known`` (``(kind, key, value, n)`` label rows)."""
    if grouping is None:
        return "model_name"
    kind, key = grouping
    keys = sorted({k for kd, k, _v, _n in known if kd == kind})
    if key not in keys:
        raise _fail("by", f"by={by!r} names no {kind.word} of this ledger; known: {keys}")
    clash = key in _TAKEN or key.endswith(tuple(f"_{s}" for s in stats))
    return f"{kind.word}:{key}" if clash else key
