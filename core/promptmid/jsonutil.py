"""Strict JSON for reports: non-finite floats (an infinite error, a missing ratio) become null."""

from __future__ import annotations

import math
from typing import Any


def json_safe(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    return v
