"""JSONPath filter expressions, ``[?(...)]``, with Jayway JsonPath's operators.

``@`` is the current node, ``$`` the root; comparisons ``== != < <= > >=``, ``&&``,
``||``, ``!`` and parentheses; and Jayway's other filter operators, which Step Functions'
docs list as unsupported only in Reference Paths: ``=~ /regex/flags`` (a full match),
``in``/``nin`` (a value in a literal array or an array path), ``subsetof``/``anyof``/
``noneof`` (array against array), ``size`` (of an array or string) and ``empty``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from stepdag.asl.paths import _MISSING, Field, Index, JsonPath, NoMatch

if TYPE_CHECKING:
    from stepdag.asl.paths import _Parser

Pred: TypeAlias = Callable[[Any, Any], bool]
Operand: TypeAlias = Callable[[Any, Any], Any]


class FilterParser:
    """Filter expressions ``?(@.a > 1 && @.b == 'x')`` on ``@`` (current) or ``$`` (root)."""

    _OPS: Final = ("==", "!=", "<=", ">=", "<", ">", "=~")
    _WORDS: Final = ("subsetof", "anyof", "noneof", "size", "empty", "nin", "in")

    def __init__(self, outer: _Parser) -> None:
        self.p = outer

    def parse_or(self) -> Pred:
        left = self.parse_and()
        while True:
            self.p.skip_ws()
            if self.p.peek(2) != "||":
                return left
            self.p.pos += 2
            right = self.parse_and()
            left = _or(left, right)

    def parse_and(self) -> Pred:
        left = self.parse_unary()
        while True:
            self.p.skip_ws()
            if self.p.peek(2) != "&&":
                return left
            self.p.pos += 2
            right = self.parse_unary()
            left = _and(left, right)

    def parse_unary(self) -> Pred:
        self.p.skip_ws()
        if self.p.peek() == "!":
            self.p.pos += 1
            inner = self.parse_unary()
            return lambda cur, root: not inner(cur, root)
        if self.p.peek() == "(":
            self.p.pos += 1
            inner = self.parse_or()
            self.p.expect(")")
            return inner
        left = self.parse_operand()
        self.p.skip_ws()
        for op in self._OPS:
            if self.p.peek(len(op)) == op:
                self.p.pos += len(op)
                if op == "=~":
                    return _matches(left, self.parse_regex())
                right = self.parse_operand()
                return _compare(op, left, right)
        for word in self._WORDS:
            if re.match(rf"{word}\b", self.p.text[self.p.pos :]):
                self.p.pos += len(word)
                return _word(word, left, self.parse_operand())
        return lambda cur, root: left(cur, root) is not _MISSING

    def parse_regex(self) -> re.Pattern[str]:
        self.p.skip_ws()
        m = re.compile(r"/((?:\\.|[^/\\])*)/([imsx]*)").match(self.p.text, self.p.pos)
        if not m:
            raise self.p.error("expected a /regular expression/ after '=~'")
        self.p.pos = m.end()
        flags = 0
        for flag in m.group(2):
            flags |= {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}[flag]
        try:
            return re.compile(m.group(1), flags)
        except re.error as exc:
            raise self.p.error(f"invalid regular expression: {exc}") from None

    def parse_array(self) -> Operand:
        self.p.pos += 1  # "["
        items: list[Operand] = []
        self.p.skip_ws()
        while self.p.peek() != "]":
            items.append(self.parse_operand())
            self.p.skip_ws()
            if self.p.peek() == ",":
                self.p.pos += 1
            elif self.p.peek() != "]":
                raise self.p.error("expected ',' or ']' in a filter array")
        self.p.pos += 1
        return lambda cur, root: [item(cur, root) for item in items]

    def parse_operand(self) -> Operand:
        self.p.skip_ws()
        ch = self.p.peek()
        if ch in ("@", "$"):
            self.p.pos += 1
            segs = tuple(self.p.parse_segments(stop=" )=!<>&|,]"))
            path = JsonPath(ch, segs, False, all(isinstance(s, Field | Index) for s in segs))
            use_root = ch == "$"

            def get(cur: Any, root: Any) -> Any:
                try:
                    return path.find(root if use_root else cur)
                except NoMatch:
                    return _MISSING

            return get
        if ch == "[":
            return self.parse_array()
        if ch in ("'", '"'):
            s = self.p.parse_quoted()
            return lambda cur, root: s
        m = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null").match(
            self.p.text, self.p.pos
        )
        if not m:
            raise self.p.error("invalid filter operand")
        self.p.pos = m.end()
        lit: Any = {"true": True, "false": False, "null": None}.get(m.group(), _MISSING)
        if lit is _MISSING:
            lit = float(m.group()) if m.group(1) or m.group(2) else int(m.group())
        return lambda cur, root: lit


def _or(a: Pred, b: Pred) -> Pred:
    return lambda cur, root: a(cur, root) or b(cur, root)


def _and(a: Pred, b: Pred) -> Pred:
    return lambda cur, root: a(cur, root) and b(cur, root)


def _equal(a: Any, b: Any) -> bool:
    return bool(a == b and isinstance(a, bool) == isinstance(b, bool))


def _matches(left: Operand, pattern: re.Pattern[str]) -> Pred:
    def pred(cur: Any, root: Any) -> bool:
        value = left(cur, root)
        return isinstance(value, str) and pattern.fullmatch(value) is not None

    return pred


def _word(word: str, left: Operand, right: Operand) -> Pred:
    def pred(cur: Any, root: Any) -> bool:
        a, b = left(cur, root), right(cur, root)
        if a is _MISSING or b is _MISSING:
            return False
        if word in ("in", "nin"):
            found = isinstance(b, list) and any(_equal(a, item) for item in b)
            return found if word == "in" else not found and isinstance(b, list)
        if word == "size":
            sized = isinstance(a, list | str | dict) and isinstance(b, int)
            return sized and not isinstance(b, bool) and len(a) == b
        if word == "empty":
            return isinstance(a, list | str) and isinstance(b, bool) and (len(a) == 0) == b
        if not (isinstance(a, list) and isinstance(b, list)):
            return False
        hits = [any(_equal(x, y) for y in b) for x in a]
        if word == "subsetof":
            return all(hits)
        return any(hits) if word == "anyof" else not any(hits)

    return pred


def _compare(op: str, left: Operand, right: Operand) -> Pred:
    def pred(cur: Any, root: Any) -> bool:
        a, b = left(cur, root), right(cur, root)
        if a is _MISSING or b is _MISSING:
            return False
        if op == "==":
            return _equal(a, b)
        if op == "!=":
            return not _equal(a, b)
        num = (int, float)
        comparable = (
            isinstance(a, num)
            and isinstance(b, num)
            and not isinstance(a, bool)
            and not isinstance(b, bool)
        ) or (isinstance(a, str) and isinstance(b, str))
        if not comparable:
            return False
        if op == "<":
            return bool(a < b)
        if op == "<=":
            return bool(a <= b)
        if op == ">":
            return bool(a > b)
        return bool(a >= b)

    return pred


__all__ = ["FilterParser", "Pred"]
