"""How params and tags compare (one canonical spelling per JSON value) and how the filter
arguments users pass are checked (perfledger.records.labels)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfledger import ValidationError
from perfledger.records.labels import canonical, check_filter, collect, decode, parse_by, sort_key

json_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=8) | st.floats(
    allow_nan=False, allow_infinity=False)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=4), inner, max_size=3), max_leaves=8)


@pytest.mark.parametrize(("a", "b"), [
    (6, 6.0), (-0.0, 0), (1e20, 10**20), ([6, {"b": 1, "a": 2.0}], [6.0, {"a": 2, "b": 1}]),
    ("ünï", "ünï"),
])
def test_equal_json_values_have_one_spelling(a: object, b: object) -> None:
    assert canonical(a) == canonical(b)


@pytest.mark.parametrize(("a", "b"), [
    (6, "6"), (True, 1), (False, 0), (None, "null"), ([64, 32], [32, 64]), ([1], 1), (0.1, 0.1000001),
    (2**53 + 1, float(2**53 + 1)),
])
def test_different_json_values_are_told_apart(a: object, b: object) -> None:
    assert canonical(a) != canonical(b)


@given(json_values)
def test_canonical_text_is_the_same_json_value(value: object) -> None:
    from decimal import Decimal

    text = canonical(value)
    # The same JSON number as the JSON json.dumps writes, compared as exact decimals (as
    # PostgreSQL's JSONB compares them): 1.110740884337837e+17 is 111074088433783700.
    exact = {"parse_float": Decimal, "parse_int": Decimal}
    assert json.loads(text, **exact) == json.loads(json.dumps(value), **exact)
    assert canonical(json.loads(text)) == text


@given(json_values)
def test_the_fast_paths_spell_values_as_json_dumps_would(value: object) -> None:
    assert canonical(value) == canonical([value])[1:-1]  # the fast paths, as the encoder spells them


def test_decode_gives_hashable_arrays_and_plain_numbers() -> None:
    assert decode("[64,32]") == (64, 32)
    assert decode("6") == 6 and isinstance(decode("6"), int)
    assert decode('{"a":[1]}') == {"a": (1,)}


def test_sort_key_orders_mixed_values() -> None:
    values = ["b", 3, None, (1, 2), True, 2.5, "a", False]
    assert sorted(values, key=sort_key) == [None, False, True, 2.5, 3, "a", "b", (1, 2)]


def test_collect_counts_labels_and_lists_each_records() -> None:
    counts, per_record = collect([{"d": 6}, {}, {"d": 6.0, "l": [1, 2]}, {"d": 6}, {"d": True}, {"d": 1}],
                                 [{"run": "n"}, {"run": "n"}, {}, {"run": "n"}])
    assert counts == {("p", "d", "6"): 3, ("p", "l", "[1,2]"): 1, ("t", "run", '"n"'): 3,
                      ("p", "d", "true"): 1, ("p", "d", "1"): 1}
    assert per_record == [(("p", "d", "6"), ("t", "run", '"n"')), (("t", "run", '"n"'),),
                          (("p", "d", "6"), ("p", "l", "[1,2]")), (("p", "d", "6"), ("t", "run", '"n"')),
                          (("p", "d", "true"),), (("p", "d", "1"),)]


def test_check_filter_normalises() -> None:
    assert check_filter("params", None) == ()
    assert check_filter("params", {"max_depth": 6.0, "lr": np.float64(0.05), "n": np.int64(3)}) == (
        ("lr", "0.05"), ("max_depth", "6"), ("n", "3"))
    assert check_filter("params", {"layers": (64, 32), "on": True, "x": None}) == (
        ("layers", "[64,32]"), ("on", "true"), ("x", "null"))
    assert check_filter("tags", {"run": "nightly"}) == (("run", '"nightly"'),)


@pytest.mark.parametrize(("field", "value", "named"), [
    ("params", {"": 1}, "params"),
    ("params", {3: 1}, "params"),
    ("params", [("a", 1)], "params"),
    ("params", "max_depth=6", "params"),
    ("params", {"layers": [64, 32]}, "params['layers']"),
    ("params", {"grid": {"a": 1}}, "params['grid']"),
    ("params", {"s": {1, 2}}, "params['s']"),
    ("params", {"x": float("nan")}, "params['x']"),
    ("params", {"x": float("inf")}, "params['x']"),
    ("params", {"x": object()}, "params['x']"),
    ("params", {"x": b"bytes"}, "params['x']"),
    ("params", {"x": "a\x00b"}, "params['x']"),
    ("params", {"x": "\ud800"}, "params['x']"),
    ("tags", {"run": 6}, "tags['run']"),
    ("tags", {"run": None}, "tags['run']"),
    ("tags", {"": "x"}, "tags"),
])
def test_bad_filters_raise_naming_the_argument(field: str, value: object, named: str) -> None:
    with pytest.raises(ValidationError) as err:
        check_filter(field, value)
    assert err.value.problems[0][1] == named
    assert named in str(err.value)


def test_parse_by() -> None:
    assert parse_by("model") is None
    assert parse_by("param:max_depth") == ("p", "max_depth")
    assert parse_by("tag:run") == ("t", "run")
    assert parse_by("param:a:b") == ("p", "a:b")
    for bad in ("", "param:", "tag:", "params:x", "max_depth", None, 3, ("param", "x")):
        with pytest.raises(ValidationError) as err:
            parse_by(bad)
        assert err.value.problems[0][1] == "by"
