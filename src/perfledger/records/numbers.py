"""The one coercion every number a user gives goes through.

A metric passed to ``log()``, a value in ``metrics=`` or in a ``log_many`` row, an imported
file's metric cell, ``history(days_back=)``, ``at_least=``, ``limit``, ``decay(recent=)``,
``n_trials``, a backtest's ``periods_per_year``, and every numeric option of the command
line (``--sharpe``, ``--recent``, ``--n-trials``, ``--min sharpe=X``...) becomes a Python
number here, and only here. Whatever Python, numpy or :mod:`decimal` allows a caller to
hand over, the answer is a number or a :class:`~perfledger.errors.ValidationError` naming the
argument and (a readable prefix of) the value:

- ``10**400``, ``99999999999999999999`` where a 64-bit count is meant, ``Decimal("1e400")``,
  the text ``"1e400"``: too large, never an ``OverflowError``;
- ``Decimal("NaN")``, ``Decimal("sNaN")``, ``nan``, ``inf``: not a finite number (unless the
  caller allows infinities, which no caller does today), never an unnamed ``ValueError``;
- ``True``, ``"abc"``, ``[1]``: not a number, a :class:`NotANumberError` (a ValidationError
  that is also a ``TypeError``, as the wrong type always was);
- a number written as text is read only where the input *is* text (the command line, with
  ``text=True``); the library's own arguments take numbers, never strings.
"""

from __future__ import annotations

import math
import numbers
from decimal import Decimal, InvalidOperation
from typing import Any

from ..errors import ValidationError, WrongTypeError

#: The largest whole number a count, a limit or a number of trials may be: a database
#: BIGINT (and numpy's int64) holds nothing larger.
MAX_WHOLE = 2**63 - 1


class NotANumberError(WrongTypeError):
    """A value of a type that is not a number (a bool, a string, a list) where a number is
    expected. A :class:`ValidationError` (bad input: the command line's exit 2) and, as such
    values always raised, a ``TypeError``."""


def shown(value: Any, width: int = 60) -> str:
    """``repr(value)`` cut to ``width`` characters, safe for any value: an int of 5,000
    digits has no ``repr`` at all in Python 3.11+ (it raises), and 400 digits help nobody."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        if value.bit_length() <= 14_000:  # str() of up to 4,300 digits is allowed
            text = str(abs(value))
            return f"{'-' if value < 0 else ''}{text[:12]}... (an integer of {len(text)} digits)"
        digits = int(value.bit_length() * 0.30103) + 1
        return f"{'-' if value < 0 else ''}<an integer of about {digits} digits>"
    try:
        text = repr(value)
    except Exception:
        return f"<a {type(value).__name__}>"
    return text if len(text) <= width else text[:width] + "..."


def _fail(field: str, message: str, cls: type[ValidationError] = ValidationError) -> ValidationError:
    return cls(message, [(None, field, message)])


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "bool_"


def to_real(field: str, value: Any, *, text: bool = False, finite: bool = True) -> float:
    """``value`` as a float, or a :class:`ValidationError` naming ``field`` and the value.

    Accepts ints, floats, :class:`~decimal.Decimal`, fractions and numpy's numbers (and, with
    ``text=True``, their spelling as text, surrounding spaces allowed). Refuses bools, other
    types, values too large for a float, and (``finite=True``) NaN and infinities.
    """
    if type(value) is float:  # the usual case, first and cheap
        f = value
    elif text and isinstance(value, str):
        s = value.strip()
        try:
            dec = Decimal(s)
        except InvalidOperation:
            raise _fail(field, f"{field}={shown(value)} is not a number") from None
        f = _from_decimal(field, dec, value, finite)
    elif _is_bool(value) or not isinstance(value, numbers.Real | Decimal):
        raise _fail(field, f"{field} must be a real number, got {type(value).__name__} {shown(value)}",
                    NotANumberError)
    elif isinstance(value, Decimal):
        f = _from_decimal(field, value, value, finite)
    else:
        try:
            f = float(value)
        except (OverflowError, ValueError, TypeError, ArithmeticError):
            raise _fail(field, f"{field}={shown(value)} is too large in magnitude for a number") from None
        if math.isinf(f) and isinstance(value, numbers.Integral):
            raise _fail(field, f"{field}={shown(value)} is too large in magnitude for a number")
    if finite and not math.isfinite(f):
        raise _fail(field, f"{field}={shown(value)} is not a finite number")
    return f


def _from_decimal(field: str, dec: Decimal, value: Any, finite: bool) -> float:
    if dec.is_nan():  # NaN and sNaN: float(Decimal("sNaN")) raises an unnamed ValueError
        if finite:
            raise _fail(field, f"{field}={shown(value)} is not a finite number")
        return math.nan
    f = float(dec)
    if math.isinf(f) and dec.is_finite():  # Decimal("1e400"): finite, but not as a float
        raise _fail(field, f"{field}={shown(value)} is too large in magnitude for a number")
    return f


def to_whole(field: str, value: Any, *, minimum: int, maximum: int = MAX_WHOLE, text: bool = False,
             what: str = "") -> int:
    """``value`` as an int in ``[minimum, maximum]``, or a :class:`ValidationError` naming
    ``field`` and the value. Whole numbers only (``3.0`` is not a count); bools refused;
    with ``text=True`` digits as text are read too. ``what`` ends the message (e.g. "(the
    number of evaluations to test)")."""
    bounds = f"a whole number from {minimum} to {maximum}"
    tail = f" {what}" if what else ""
    if text and isinstance(value, str):
        s = value.strip()
        try:
            value = int(s) if len(s) <= 40 else None
        except ValueError:
            value = None
        if value is None:
            raise _fail(field, f"{field}={shown(s)} must be {bounds}{tail}")
    if _is_bool(value) or not isinstance(value, numbers.Integral):
        cls = NotANumberError if not isinstance(value, numbers.Number | Decimal) else ValidationError
        raise _fail(field, f"{field}={shown(value)} must be {bounds}{tail}", cls)
    n = int(value)
    if not minimum <= n <= maximum:
        raise _fail(field, f"{field}={shown(value)} must be {bounds}{tail}")
    return n
