"""``java.util.Random``, for the seeded random functions (``States.MathRandom`` with a seed,
JSONata's ``$random(seed)``): Step Functions runs on the JVM, and a seed gives the same
value on every run there, so a seeded call here gives Java's value, not Python's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

_MULTIPLIER: Final = 0x5DEECE66D
_MASK: Final = (1 << 48) - 1


def _generator(seed: int) -> Callable[[int], int]:
    """``Random(seed).next(bits)`` as a closure over the 48-bit state."""
    state = (seed ^ _MULTIPLIER) & _MASK

    def next_bits(bits: int) -> int:
        nonlocal state
        state = (state * _MULTIPLIER + 0xB) & _MASK
        return state >> (48 - bits)  # bits <= 31 here, so Java's int cast keeps it positive

    return next_bits


def next_double(seed: int) -> float:
    """``new java.util.Random(seed).nextDouble()``."""
    next_bits = _generator(seed)
    high = next_bits(26)
    low = next_bits(27)
    return ((high << 27) + low) * 2.0**-53


def next_int(seed: int, bound: int) -> int:
    """``new java.util.Random(seed).nextInt(bound)`` for ``0 < bound <= 2**31 - 1``."""
    next_bits = _generator(seed)
    if bound & -bound == bound:  # a power of two: the high bits
        return (bound * next_bits(31)) >> 31
    while True:
        bits = next_bits(31)
        value = bits % bound
        if bits - value + (bound - 1) < 1 << 31:
            return value


__all__ = ["next_double", "next_int"]
