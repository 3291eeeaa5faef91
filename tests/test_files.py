"""vidcap_core/files.py: JSON that strict readers accept."""

from __future__ import annotations

import json
import math

from vidcap_core.files import json_safe


def test_json_safe_turns_every_non_finite_float_into_null():
    value = {"a": math.nan, "b": [math.inf, 1.5, (-math.inf, 2)], "c": {"d": math.nan, "e": "text"}}
    assert json_safe(value) == {"a": None, "b": [None, 1.5, [None, 2]], "c": {"d": None, "e": "text"}}
    json.dumps(json_safe(value), allow_nan=False)
