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
- ``1e-400``, ``Decimal("1e-400")``, ``Fraction(1, 10**400)``: a number other than 0 that a
  float64 would turn into 0, too small, never silently 0 (as one that it would turn into an
  infinity is too large): pass 0 for zero;
- ``Decimal("NaN")``, ``Decimal("sNaN")``, ``nan``, ``inf``: not a finite number (unless the
  caller allows infinities, which no caller does today), never an unnamed ``ValueError``;
- text is read as a number only when it is spelled with the ASCII digits 0-9 (an optional
  sign, a decimal point, an exponent): ``1_000`` and ``１２`` (which Python's ``float()``,
  ``int()`` and ``Decimal()`` all read) are refused, so what is stored is what a person reads;
- ``True``, ``"abc"``, ``[1]``: not a number, a :class:`NotANumberError` (a ValidationError
  that is also a ``TypeError``, as the wrong type always was);
- a number written as text is read only where the input *is* text (the command line, with
  ``text=True``); the library's own arguments take numbers, never strings.
"""

from __future__ import annotations

import math
import numbers
import re
from decimal import Decimal
from typing import Any

from ..errors import ValidationError, WrongTypeError

#: The largest whole number a count, a limit or a number of trials may be: a database
#: BIGINT (and numpy's int64) holds nothing larger.
MAX_WHOLE = 2**63 - 1


#: Text a number may be written as: ASCII digits, an optional sign, point and exponent
#: (``12``, ``-1.5``, ``.5``, ``1e-3``), or one of the names of the values that are not
#: finite (refused or allowed by the caller's ``finite``).
_REAL_TEXT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:s?nan|inf(?:inity)?)",
                        re.ASCII | re.IGNORECASE)
_WHOLE_TEXT = re.compile(r"[+-]?\d+", re.ASCII)
#: The largest finite float64: what the message of a value too large for one says.
_FLOAT_MAX = 1.7976931348623157e308


class MagnitudeError(ValidationError):
    """A number too large or too small in magnitude for a float64 (``too_large`` says
    which): a ValidationError that a caller with a narrower range of its own (a metric,
    :mod:`.validation`) may word with that range."""

    def __init__(self, message: str, problems: Any, *, too_large: bool, text: str):
        super().__init__(message, problems)
        self.too_large = too_large
        #: The value as the user wrote it (a readable prefix).
        self.text = text


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
        if not _REAL_TEXT.fullmatch(s):
            raise _fail(field, f"{field}={shown(value)} is not a number{_spelling(s)}")
        f = _from_decimal(field, Decimal(s), value, finite)
    elif _is_bool(value) or not isinstance(value, numbers.Real | Decimal):
        raise _fail(field, f"{field} must be a real number, got {type(value).__name__} {shown(value)}",
                    NotANumberError)
    elif isinstance(value, Decimal):
        f = _from_decimal(field, value, value, finite)
    else:
        try:
            f = float(value)
        except (OverflowError, ValueError, TypeError, ArithmeticError):
            raise _magnitude(field, value, too_large=True) from None
        if math.isinf(f) and isinstance(value, numbers.Integral):
            raise _magnitude(field, value, too_large=True)
        if f == 0 and value != 0:  # Fraction(1, 10**400), a long double: not zero, yet 0.0
            raise _magnitude(field, value, too_large=False)
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
        raise _magnitude(field, value, too_large=True)
    if f == 0 and not dec.is_zero():  # Decimal("1e-400"): not zero, but 0.0 as a float
        raise _magnitude(field, value, too_large=False)
    return f


def _magnitude(field: str, value: Any, *, too_large: bool) -> MagnitudeError:
    """The error for a number other than 0 that a float64 cannot hold: it would become an
    infinity (``too_large``) or 0. Both are refused alike: storing 0 for ``1e-400`` changes
    the number as silently as storing ``inf`` for ``1e400`` would."""
    if too_large:
        message = (f"{field}={shown(value)} is too large in magnitude for a number (a float64 holds "
                   f"at most ±{_FLOAT_MAX:.1e})")
    else:
        message = (f"{field}={shown(value)} is too small in magnitude for a number: a float64 "
                   "would turn it into 0 (the smallest it holds is 5e-324); pass 0 if you "
                   "mean zero")
    return MagnitudeError(message, [(None, field, message)], too_large=too_large, text=shown(value))


def whole_words(minimum: int, maximum: int) -> str:
    """How a message (and a command's help) says a range of whole numbers."""
    return f"a whole number from {minimum} to {maximum}"


def _spelling(text: str, *, whole: bool = False) -> str:
    """Why text that reads like a number is not one here (underscores, digits other than
    ASCII 0-9, spaces inside), or nothing."""
    if not any(c.isdigit() for c in text):
        return ""
    if "_" in text:
        return ": write it without '_' separators, with the digits 0-9 only"
    if any(not c.isascii() for c in text) or any(c.isspace() for c in text):
        return ": write it with the ASCII digits 0-9" + ("" if whole else " (a sign, a point and an "
                                                          "exponent as in -1.5e-3 are allowed)")
    return ""


def to_whole(field: str, value: Any, *, minimum: int, maximum: int = MAX_WHOLE, text: bool = False,
             what: str = "", words: str = "") -> int:
    """``value`` as an int in ``[minimum, maximum]``, or a :class:`ValidationError` naming
    ``field`` and the value. Whole numbers only (``3.0`` is not a count); bools refused;
    with ``text=True`` digits as text are read too. ``what`` ends the message (e.g. "(the
    number of evaluations to test)"); ``words`` replaces "a whole number from MINIMUM to
    MAXIMUM" (a caller whose range has a further rule says it whole)."""
    bounds = words or whole_words(minimum, maximum)
    tail = f" {what}" if what else ""
    given = value
    if text and isinstance(value, str):
        s = value.strip()
        if len(s) > 40 or not _WHOLE_TEXT.fullmatch(s):  # int() reads "1_0" and "１２" too
            raise _fail(field, f"{field}={shown(s)} must be {bounds}{tail}{_spelling(s, whole=True)}")
        value, given = int(s), s
    if _is_bool(value) or not isinstance(value, numbers.Integral):
        cls = NotANumberError if not isinstance(value, numbers.Number | Decimal) else ValidationError
        raise _fail(field, f"{field}={shown(value)} must be {bounds}{tail}", cls)
    n = int(value)
    if not minimum <= n <= maximum:  # named as the user wrote it ("-0", "+5")
        raise _fail(field, f"{field}={shown(given)} must be {bounds}{tail}")
    return n
