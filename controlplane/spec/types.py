"""Scalar value types of the spec language: durations, sizes, ratios and data paths.

Each type validates the user's text, keeps it for round trips, and exposes the
typed value (`seconds`, `bytes`, `value`, `parts`) that translators and policies use.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import lru_cache
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
DURATION_PATTERN = r"^(\d+(ms|s|m|h|d))+$"
_DURATION_RE = re.compile(DURATION_PATTERN)
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d)")

_SIZE_UNITS = {"": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
SIZE_PATTERN = r"^\d+(KiB|MiB|GiB)?$"
_SIZE_RE = re.compile(r"^(\d+)(KiB|MiB|GiB)?$")

RATIO_PATTERN = r"^(100(\.0+)?|\d{1,2}(\.\d+)?)%$"
_RATIO_RE = re.compile(RATIO_PATTERN)

PATH_PATTERN = r"^\$((\.[A-Za-z_][A-Za-z0-9_-]*)|(\[\d+\]))*$"
_PATH_RE = re.compile(PATH_PATTERN)
_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]")


MAX_DURATION_SECONDS = 9_223_372_036
"""The longest duration cpl accepts: 2^63-1 nanoseconds (about 292 years), the most a Go
`time.Duration` holds. Temporal (its server and workflow timers) and Argo (deadlines and
suspend durations) keep durations that way and overflow beyond it; Step Functions takes whole
seconds up to 99,999,999 in its own fields. Nothing longer can be deployed anywhere, so a
longer duration is a validation error rather than a value an engine misreads."""

# More digits than any number of a duration within the bound has (with `ms`), so huge
# numbers are refused before they are converted.
_MAX_DURATION_DIGITS = len(str(MAX_DURATION_SECONDS * 1000))


@lru_cache(maxsize=8192)
def parse_duration(text: str) -> float:
    """Seconds in a duration such as `90s` or `1h30m`; ValueError when it does not parse or
    is longer than `MAX_DURATION_SECONDS`."""
    if not isinstance(text, str) or not _DURATION_RE.match(text):
        raise ValueError(f"{text!r} is not a duration (use <n><unit>, units ms s m h d, e.g. 90s)")
    parts = _DURATION_PART.findall(text)
    seconds = (
        None
        if any(len(n.lstrip("0")) > _MAX_DURATION_DIGITS for n, _ in parts)
        else sum(int(n) * _DURATION_UNITS[unit] for n, unit in parts)
    )
    if seconds is None or seconds > MAX_DURATION_SECONDS:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ValueError(
            f"{shown!r} is longer than any engine accepts (at most {MAX_DURATION_SECONDS}s, "
            "about 292 years)"
        )
    return seconds


@lru_cache(maxsize=4096)
def parse_size(value: str | int) -> int:
    """Bytes in a size such as `256KiB` or `1024`; ValueError when it does not parse."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value!r} is not a size (negative)")
        return value
    match = _SIZE_RE.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"{value!r} is not a size (use <n>[KiB|MiB|GiB] or a byte count)")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2) or ""]


def parse_ratio(value: str | int | float) -> float:
    """A ratio from 0 to 1 given as a number (`0.02`) or a percentage (`2%`); ValueError else."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{value!r} is not a ratio")
    if isinstance(value, str):
        if not _RATIO_RE.match(value):
            raise ValueError(f"{value!r} is not a ratio (use 0.02 or 2%)")
        # Decimal: 7% is exactly 0.07, not 0.07000000000000001.
        ratio = float(Decimal(value[:-1]) / 100)
    else:
        ratio = float(value)
    if not 0 <= ratio <= 1:
        raise ValueError(f"{value!r} is not a ratio from 0 to 1 (0% to 100%)")
    return ratio


@lru_cache(maxsize=16384)
def parse_path(text: str) -> tuple[str | int, ...]:
    """The keys and indexes of a JSONPath-subset path (`$.a[0].b` → ("a", 0, "b"))."""
    if not isinstance(text, str) or not _PATH_RE.match(text):
        raise ValueError(f"{text!r} is not a data path (use $, $.a.b or $.a[0].b)")
    return tuple(key if key else int(index) for key, index in _PATH_PART.findall(text))


NORMALIZED = "normalized"


def _serialize(value: _TextValue, info: core_schema.SerializationInfo) -> Any:
    """The user's text, or the typed value when dumping the normalized document."""
    context = info.context
    if isinstance(context, dict) and context.get(NORMALIZED):
        return value.typed()
    return value.original()


# Values are immutable and specs repeat the same few durations and paths thousands of times:
# share one instance per text instead of parsing each occurrence.
_INSTANCES: dict[Any, Any] = {}
_INSTANCE_CACHE_LIMIT = 65536


class _TextValue:
    """A value parsed from text that remembers the text (for round trips)."""

    __slots__ = ("text",)
    _json_schema: dict[str, Any] = {}
    _error_code = "CPL-S004"

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def typed(self) -> Any:
        """The value in the normalized document (seconds, bytes, or the path text)."""
        return self.text

    def original(self) -> Any:
        """The value as the user wrote it."""
        return self.text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.text!r})"

    def __hash__(self) -> int:
        return hash((type(self), self.text))

    @classmethod
    def _validate(cls, value: Any) -> Any:
        if isinstance(value, cls):
            return value
        if not isinstance(value, str | int | float):
            return cls._parse(value)
        key = (cls, type(value), value)
        cached = _INSTANCES.get(key)
        if cached is not None:
            return cached
        instance = cls._parse(value)
        if len(_INSTANCES) > _INSTANCE_CACHE_LIMIT:
            _INSTANCES.clear()
        _INSTANCES[key] = instance
        return instance

    @classmethod
    def _parse(cls, value: Any) -> _TextValue:
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise PydanticCustomError(
                cls._error_code, "expected text, found {found}", {"found": type(value).__name__}
            )
        try:
            return cls(str(value) if cls is not Size else value)  # type: ignore[arg-type]
        except ValueError as exc:
            raise PydanticCustomError(cls._error_code, "{problem}", {"problem": str(exc)}) from None

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                _serialize, info_arg=True, when_used="always"
            ),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return dict(cls._json_schema)


class Duration(_TextValue):
    """A duration such as `5m`; `.seconds` is its length."""

    __slots__ = ("seconds",)
    _error_code = "CPL-S022"
    _json_schema = {"type": "string", "pattern": DURATION_PATTERN, "examples": ["90s", "1h30m"]}

    def __init__(self, text: str) -> None:
        self.seconds = parse_duration(text)
        super().__init__(text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Duration) and self.seconds == other.seconds

    __hash__ = _TextValue.__hash__

    def __lt__(self, other: Duration) -> bool:
        return self.seconds < other.seconds

    def typed(self) -> Any:
        return int(self.seconds) if self.seconds == int(self.seconds) else self.seconds


class Size(_TextValue):
    """A size such as `256KiB`; `.bytes` is its value."""

    __slots__ = ("_original", "bytes")
    _error_code = "CPL-S023"
    _json_schema = {
        "anyOf": [
            {"type": "string", "pattern": SIZE_PATTERN},
            {"type": "integer", "minimum": 0},
        ]
    }

    def __init__(self, text: str | int) -> None:
        self.bytes = parse_size(text)
        super().__init__(str(text))
        self._original = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Size) and self.bytes == other.bytes

    def typed(self) -> Any:
        return self.bytes

    def original(self) -> Any:
        return self._original

    __hash__ = _TextValue.__hash__


class Ratio(_TextValue):
    """A ratio such as `0.02` or `2%`; `.value` is the number from 0 to 1."""

    __slots__ = ("_original", "value")
    _json_schema = {
        "anyOf": [
            {"type": "number", "minimum": 0, "maximum": 1},
            {"type": "string", "pattern": RATIO_PATTERN},
        ],
        "examples": [0.02, "2%"],
    }

    def __init__(self, text: str | int | float) -> None:
        self.value = parse_ratio(text)
        super().__init__(str(text))
        self._original = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ratio) and self.value == other.value

    __hash__ = _TextValue.__hash__

    def typed(self) -> Any:
        return self.value

    def original(self) -> Any:
        return self._original

    @classmethod
    def _parse(cls, value: Any) -> _TextValue:
        # Unlike the other text values a ratio may be a float; _TextValue only takes text.
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise PydanticCustomError(
                cls._error_code, "expected a ratio, found {found}", {"found": type(value).__name__}
            )
        try:
            return cls(value)
        except ValueError as exc:
            raise PydanticCustomError(cls._error_code, "{problem}", {"problem": str(exc)}) from None


class DataPath(_TextValue):
    """A JSONPath-subset path into the run's data document; `.parts` are its keys."""

    __slots__ = ("parts",)
    _error_code = "CPL-S027"
    _json_schema = {"type": "string", "pattern": PATH_PATTERN, "examples": ["$", "$.order.id"]}

    def __init__(self, text: str) -> None:
        self.parts = parse_path(text)
        super().__init__(text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DataPath) and self.text == other.text

    __hash__ = _TextValue.__hash__


def shown(value: Any) -> str:
    """A document value as a user would write it in YAML, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)


def is_path(value: Any) -> bool:
    """Whether a parameter value is a data path (a string starting with `$`)."""
    return isinstance(value, str) and value.startswith("$") and bool(_PATH_RE.match(value))


NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
TENANT_PATTERN = r"^[a-z][a-z0-9-]{0,30}$"
