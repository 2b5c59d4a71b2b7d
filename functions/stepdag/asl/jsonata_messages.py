"""jsonatapy's error messages in jsonata-js's wording, which is what AWS prints.

jsonata-js renders its catalog with values JSON-quoted (``Argument 1 of function "sum"
must be an array of "numbers"``); jsonatapy words several errors its own way and leaves
out the function name. Messages not listed here pass through unchanged.
"""

from __future__ import annotations

import json
import re
from typing import Final

_ARRAY_TYPES: Final = {
    "Number": "numbers",
    "String": "strings",
    "Object": "objects",
    "Array": "arrays",
    "Boolean": "booleans",
    "Function": "functions",
}
_CALLED: Final = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def js_message(message: str, text: str) -> str:
    """jsonatapy's wording of the common errors → jsonata-js's catalog, which AWS prints
    (values JSON-quoted: ``T0412: Argument 1 of function "sum" must be an array of "numbers"``).
    The function name is the expression's (first) called function: jsonatapy omits it."""
    called = _CALLED.findall(text)
    fn = json.dumps(called[0]) if called else '"function"'
    if m := re.fullmatch(r"T0412: Argument (\d+) must be an array of (\w+)", message):
        kind = json.dumps(_ARRAY_TYPES.get(m.group(2), m.group(2).lower()))
        return f"T0412: Argument {m.group(1)} of function {fn} must be an array of {kind}"
    if m := re.fullmatch(r"T0410: Argument (\d+) must be .*", message):
        return f"T0410: Argument {m.group(1)} of function {fn} does not match function signature"
    if m := re.fullmatch(r"T0410: Argument count mismatch: expected (\d+), got (\d+)", message):
        # jsonata-js names the first argument that does not fit.
        index = min(int(m.group(1)), int(m.group(2))) + 1
        return f"T0410: Argument {index} of function {fn} does not match function signature"
    if re.fullmatch(r"T0411: Context value does not match function signature.*", message):
        return f"T0411: Context value is not a compatible type with argument 1 of function {fn}"
    if m := re.fullmatch(r"(T200[12]): The (left|right) side of the (\S+) operator (.*)", message):
        code, side, op, rest = m.groups()
        return f"{code}: The {side} side of the {json.dumps(op)} operator {rest}"
    if m := re.fullmatch(r"(T200[34]): (Left|Right) operand of range operator must be .*", message):
        side = m.group(2).lower()
        return (
            f"{m.group(1)}: The {side} side of the range operator (..) must evaluate to an integer"
        )
    if m := re.fullmatch(r"D3030: Cannot convert '(.*)' to number", message):
        return f"D3030: Unable to cast value to a number: {json.dumps(m.group(1))}"
    if message.startswith("T2010: "):
        op = re.search(r"<=|>=|<|>", text)
        token = json.dumps(op.group() if op else "<")
        return (
            f"T2010: The expressions either side of operator {token} must evaluate to numeric "
            "or string values"
        )
    if m := re.fullmatch(r"D3100: Radix must be between 2 and 36, got (.*)", message):
        return (
            "D3100: The radix of the $formatBase function must be between 2 and 36.  It was "
            f"given {m.group(1)}"
        )
    if message == "D3010: Pattern cannot be empty":
        return "D3010: Second argument of replace function cannot be an empty string"
    if message.startswith("T1006: Attempted to invoke a non-function"):
        return "T1006: Attempted to invoke a non-function"
    if m := re.fullmatch(r"(D313[89]: .*?matched (?:more|0)\.).*", message):
        return m.group(1)
    return message


_TOKENS: Final = {
    "LeftBracket": "[", "RightBracket": "]", "LeftParen": "(", "RightParen": ")",
    "LeftBrace": "{", "RightBrace": "}", "Comma": ",", "Colon": ":", "Semicolon": ";",
    "At": "@", "Dot": ".", "Hash": "#", "Question": "?", "Caret": "^", "Pipe": "|",
}  # fmt: skip
_TOKEN: Final = re.compile(
    r"\b(" + "|".join(_TOKENS) + r")\b|(?:Identifier|Number|String)\((.*?)\)(?=[ ,]|$)"
)


def _token(match: re.Match[str]) -> str:
    if match.group(1):
        return json.dumps(_TOKENS[match.group(1)])
    value = match.group(2).strip('"')
    if re.fullmatch(r"-?\d+\.0", value):
        value = value[:-2]
    return json.dumps(value)


def js_syntax_message(message: str) -> str:
    """jsonatapy's parse error → jsonata-js's text without its code, which is what AWS
    reports (``INVALID_JSONATA_EXPRESSION: Expected "]", got ","``)."""
    message = message.removeprefix("Parse error: ").removeprefix("Invalid syntax: ")
    message = re.sub(r"^[A-Z]\d{4}: ", "", message)
    if message.startswith("Syntax error: "):
        return "Syntax error: " + _TOKEN.sub(_token, message[len("Syntax error: ") :])
    return _TOKEN.sub(_token, message)


__all__ = ["js_message", "js_syntax_message"]
