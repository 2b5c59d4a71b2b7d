from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Optional

import pytest
from pydantic import BaseModel

from stepdag.core.types import accepts_none, describe, is_assignable, item_type


class Base(BaseModel):
    a: int


class Child(Base):
    b: int


@pytest.mark.parametrize(
    ("src", "dst", "ok"),
    [
        (int, int, True),
        (int, float, True),
        (float, int, False),
        (bool, int, True),
        (str, int, False),
        (Child, Base, True),
        (Base, Child, False),
        (list[int], Sequence[int], True),
        (list[int], Iterable[float], True),
        (list[int], list[str], False),
        (list[int], dict[str, int], False),
        (dict[str, int], Mapping[str, float], True),
        (int, Optional[int], True),  # noqa: UP045 - the spelling under test
        (int | None, int, False),
        (int | str, int | str | None, True),
        (Literal["a", "b"], str, True),
        (str, Literal["a"], False),
        (Any, int, True),
        (int, Any, True),
        (tuple[int, int], Sequence[int], True),
        (tuple[int, ...], tuple[float, ...], True),
        ("Forward", int, True),
    ],
)
def test_is_assignable(src: Any, dst: Any, ok: bool) -> None:
    assert is_assignable(src, dst) is ok


def test_item_type_and_none() -> None:
    assert item_type(list[Base]) is Base
    assert item_type(Sequence[int]) is int
    assert item_type(list) is Any
    assert item_type(int) is None
    assert item_type(dict[str, int]) is None
    assert item_type(list[int] | None) is int
    assert accepts_none(int | None) and accepts_none(Any) and not accepts_none(int)
    assert describe(list[Base] | None) == "list[Base] | None"
