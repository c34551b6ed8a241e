"""Turning a call's arguments into JSON the server accepts exactly."""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import decimal
import enum
import math
import pathlib
import uuid
from collections.abc import Mapping
from typing import Any

# The server refuses numbers JSON cannot carry exactly: integers beyond ±2^53.
_EXACT_INT = 2**53
_MAX_DEPTH = 64


def json_safe(value: Any, _depth: int = 0) -> Any:
    """`value` as plain JSON (dicts with string keys, lists, strings, exact numbers, booleans, null).

    Integers beyond ±2^53, NaN and infinities become strings; dataclasses, Pydantic models,
    enums, dates, UUIDs, paths and bytes (base64) become their natural JSON form; anything
    else becomes its `repr()`, so a payload never fails to serialise.
    """
    if _depth > _MAX_DEPTH:
        return repr(value)
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, enum.Enum):
        return json_safe(value.value, _depth + 1)
    if isinstance(value, int):
        return value if -_EXACT_INT <= value <= _EXACT_INT else str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value) or abs(value) >= _EXACT_INT:
            return repr(value)
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (uuid.UUID, pathlib.PurePath)):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, _depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [json_safe(v, _depth + 1) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return sorted(items, key=repr)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_safe(dataclasses.asdict(value), _depth + 1)
    dump = getattr(value, "model_dump", None)  # Pydantic v2
    if callable(dump):
        try:
            return json_safe(dump(mode="json"), _depth + 1)
        except Exception:  # noqa: BLE001 - fall back to repr below
            pass
    return repr(value)
