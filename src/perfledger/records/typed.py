"""A param's value typed as text: ``--param K=V`` (``log``, and the ``history``/``export``/
``leaderboard`` filters) and the dashboard's log form.

The text is read as JSON when it is JSON (``6`` a number, ``"6"`` a string, ``[64, 32]`` a
list, ``true``), and kept as text otherwise (``adam``). Between the two lies text that a
person reads as a number but JSON does not: ``1_000``, ``１２`` (full-width digits), ``.5``,
``+5``, ``1.``, ``007``, ``nan``, ``inf``. Kept as text, ``lr=.5`` would be stored as the
string ``".5"``, which no filter ``lr=0.5`` finds; so it is refused, naming the field and
the text, with the number to write instead (or the quotes that make it a string). A JSON
number a float64 cannot hold as written (``1e400``, ``1e-400``: JSON readers make them
``inf`` and ``0.0``) and the constants ``NaN``/``Infinity`` are refused the same way,
quoting the text the user typed, never the float it would have become.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import ValidationError
from .numbers import to_real

#: Text that reads as a number to a person (any Unicode digits, ``_`` separators, a bare
#: point, a sign, leading zeros) or names a value that is not a finite number.
_NUMBERISH = re.compile(
    r"[+-]?(?=[\d_]*\d|\.\d)[\d_]*\.?[\d_]*(?:[eE][+-]?[\d_]+)?|[+-]?(?:s?nan|inf(?:inity)?)", re.IGNORECASE)


def _fail(field: str, message: str) -> ValidationError:
    return ValidationError(message, [(None, field, message)])


def json_from_text(field: str, text: str) -> Any:
    """``text`` as the JSON value it spells, or the text itself when it spells none; a
    :class:`ValidationError` naming ``field`` and the text for text that reads as a number
    without being one JSON keeps (see the module docstring)."""

    def number(literal: str) -> float:
        return to_real(field, literal, text=True)  # 1e400, 1e-400: named as typed

    def constant(literal: str) -> Any:
        raise _fail(field, f"{field}={literal!r} is not a finite number; to keep it as text, quote it "
                           f"('\"{literal}\"')")

    try:
        return json.loads(text, parse_float=number, parse_constant=constant)
    except RecursionError:  # "[" * 1000: no parameter is nested that deep
        raise _fail(field, f"{field}=... is nested too deeply ({len(text)} characters)") from None
    except ValidationError:
        raise  # a literal a float64 cannot hold, named as typed
    except ValueError:
        pass
    s = text.strip()
    if not _NUMBERISH.fullmatch(s):
        return text
    try:
        value = to_real(field, s, text=True)
    except ValidationError as exc:
        message = str(exc)
    else:
        closest = int(value) if value.is_integer() and abs(value) < 2**53 else value
        message = (f"{field}={text!r} reads as a number but is not written as one JSON reads: "
                   f"write {closest!r}")
    raise _fail(field, f"{message}; to keep it as text, quote it ('\"{s}\"')")
