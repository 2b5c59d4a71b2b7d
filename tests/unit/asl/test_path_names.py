"""Field names with special characters in JSONPath (Jayway's rules, as Step Functions uses)."""

from __future__ import annotations

import pytest

from stepdag.asl.paths import PathSyntaxError, compile_path

DOC = {
    "a.b": 1,
    "with space": 2,
    "abc": {"def ghi": 3, "list": [10, 11]},
    "a-b": 4,
    "$x": 5,
    "héllo": 6,
    "日本": 7,
    "it's": 8,
    'say "hi"': 9,
    "@id": 10,
    "123": 11,
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$['a.b']", 1),
        ("$['with space']", 2),
        ('$["with space"]', 2),
        # AWS's intrinsic-functions page: "For example, $.abc.['def ghi']".
        ("$.abc.['def ghi']", 3),
        ("$.abc['def ghi']", 3),
        ("$.abc.list.[1]", 11),
        ("$.a-b", 4),
        ("$['$x']", 5),
        ("$.héllo", 6),
        ("$['日本']", 7),
        ("$['it\\'s']", 8),
        ("$['say \"hi\"']", 9),
        ("$.@id", 10),
        ("$.123", 11),
        ("$['123']", 11),
    ],
)
def test_special_field_names(path: str, expected: object) -> None:
    assert compile_path(path).find(DOC) == expected


@pytest.mark.parametrize("bad", ["$.with space", "$.abc.", "$['unterminated", "$.abc..."])
def test_invalid_field_names_are_rejected_at_load(bad: str) -> None:
    with pytest.raises(PathSyntaxError):
        compile_path(bad)
