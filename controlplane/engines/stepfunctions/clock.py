"""The current time as a number, computed by a state machine from `$$.State.EnteredTime`.

ASL has no clock but the ISO 8601 time a state was entered, and no arithmetic but
`States.MathAdd`. A circuit breaker needs "now" and "now + resetTimeout" as numbers it can
compare in a DynamoDB condition, so `now_seconds()` renders an intrinsic expression: the
timestamp is split into its fields, each field is read as a number, and the seconds each field
stands for are looked up in constant tables (year starts, month starts with and without a leap
day, days, hours, minutes) and added. Each AWS and the emulator format the timestamp slightly
differently (`...T20:14:13.192Z` and `...T20:14:13.192000+00:00`); both split into the same
first six fields.

Seconds are counted from 2020-01-01T00:00:00Z so that every value until 2087 fits the 32-bit
integers `States.MathAdd` accepts.
"""

from __future__ import annotations

import calendar
from functools import cache

EPOCH_YEAR = 2020
YEARS = 68
"""Years covered from EPOCH_YEAR (2^31 seconds is a little over 68 years)."""

_ENTERED = "$$.State.EnteredTime"
_SEPARATORS = "-T:.Z+"


def _since_epoch(year: int, month: int = 1) -> int:
    return calendar.timegm((year, month, 1, 0, 0, 0)) - calendar.timegm((EPOCH_YEAR, 1, 1, 0, 0, 0))


def _array(values: list[int]) -> str:
    return "States.Array(" + ", ".join(str(value) for value in values) + ")"


def _field(index: int) -> str:
    return f"States.ArrayGetItem(States.StringSplit({_ENTERED}, '{_SEPARATORS}'), {index})"


def _number(index: int, offset: int) -> str:
    """Field `index` (two digits, maybe with a leading zero) as a number plus `offset`.

    "08" is not JSON, so the field is read as "1" + field (108) and 100 is taken off again.
    """
    return f"States.MathAdd(States.StringToJson(States.Format('1{{}}', {_field(index)})), {offset})"


@cache  # a constant, and rendering a circuit breaker asks for it several times
def now_seconds() -> str:
    """Intrinsic expression: whole seconds since 2020-01-01T00:00:00Z when the state was entered."""
    year_starts = [_since_epoch(EPOCH_YEAR + i) for i in range(YEARS)]
    leap_offsets = [12 if calendar.isleap(EPOCH_YEAR + i) else 0 for i in range(YEARS)]
    month_starts = [
        _since_epoch(year, month) - _since_epoch(year)
        for year in (2021, 2020)
        for month in range(1, 13)
    ]
    year = f"States.MathAdd(States.StringToJson({_field(0)}), -{EPOCH_YEAR})"
    parts = [
        f"States.ArrayGetItem({_array(year_starts)}, {year})",
        f"States.ArrayGetItem({_array(month_starts)}, States.MathAdd("
        f"States.ArrayGetItem({_array(leap_offsets)}, {year}), {_number(1, -101)}))",
        f"States.ArrayGetItem({_array([day * 86400 for day in range(31)])}, {_number(2, -101)})",
        f"States.ArrayGetItem({_array([hour * 3600 for hour in range(24)])}, {_number(3, -100)})",
        f"States.ArrayGetItem({_array([minute * 60 for minute in range(60)])}, {_number(4, -100)})",
        _number(5, -100),
    ]
    total = parts[0]
    for part in parts[1:]:
        total = f"States.MathAdd({total}, {part})"
    return total


def now_text() -> str:
    """`now_seconds()` as the decimal text DynamoDB takes for a number (`{"N": ...}`)."""
    return f"States.Format('{{}}', {now_seconds()})"
