"""Declared ranges of experiment ``Config`` fields: parsing, validation and the size guard.

Every experiment's ``Config`` is a frozen dataclass whose field annotations say what a valid
value is. The rules come from the type, and from a :class:`Range` attached with
``typing.Annotated`` where the type alone is too loose::

    seed: Seed = 0                               # an int >= 0
    n_train: Count = 1000                        # an int >= 1 (sizes, steps, widths)
    lr: Positive = 1e-3                          # a finite float > 0
    ema_decay: Annotated[float, Range(0, 1, hi_open=True)] = 0.99
    widths: tuple[Count, ...] = (4, 8)           # non-empty, every element an int >= 1
    depth2_widths: Annotated[tuple[Count, ...], MAY_BE_EMPTY] = ()

Rules by type: ``int`` is an int and not a bool; ``float`` is finite (NaN and inf are refused
everywhere); ``bool`` is a bool; ``str`` is non-empty; ``tuple[T, ...]`` is non-empty unless
marked :data:`MAY_BE_EMPTY`, has no empty element, and every element follows ``T``'s rules;
``tuple[T, T]`` has exactly that many elements. Choices among names (samplers, processes ...)
and relations between fields stay in each ``Config.__post_init__``; these rules are the
per-field part, checked first, so a bad value is reported by its key before any
``__post_init__`` arithmetic can trip over it.

Size guard. A count is only "too large" relative to the other fields and to the machine, so a
per-field maximum would be either arbitrary or wrong. Instead each ``Config`` lists its largest
arrays as a method ``array_sizes() -> {expression: element count}``, the expression written in
field names (``"mlp_points * max(mlp_widths)"``). :func:`check_size` multiplies the largest
by the experiment's item size and refuses the configuration when that one array alone exceeds
the memory of this machine (physical memory, or the cgroup limit when lower). The estimates
are lower bounds on what a run needs (one array, not the peak of all live ones), so the guard
refuses only work that certainly cannot fit -- e.g. ``--set mlp_points=1000000000000``, which
otherwise aborts the interpreter inside XLA -- and lets borderline configurations through.

:func:`parse_value` turns the text of ``--set key=value`` into a value by the same annotation
(tuples as ``1,2,3``; an empty element, as in ``1,,2``, is refused).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
import typing
from typing import Annotated, Any

__all__ = [
    "Range", "MAY_BE_EMPTY", "Seed", "Count", "NonNegInt", "Positive", "NonNegative",
    "Probability", "OpenUnit", "HalfOpenUnit", "AtLeastTwo", "AboveOne", "ConfigError", "Rule",
    "rules", "parse_value", "check_value", "validate", "memory_bytes", "check_size",
]


class ConfigError(ValueError):
    """A field value breaks its declared rule; ``key`` names the field."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


@dataclasses.dataclass(frozen=True)
class Range:
    """``lo <= value <= hi`` (either side open with ``lo_open`` / ``hi_open``; ``None``: no
    bound on that side)."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def __contains__(self, v) -> bool:
        if self.lo is not None and not (v > self.lo if self.lo_open else v >= self.lo):
            return False
        if self.hi is not None and not (v < self.hi if self.hi_open else v <= self.hi):
            return False
        return True

    def __str__(self) -> str:
        if self.lo is not None and self.hi is not None:
            return (f"in {'(' if self.lo_open else '['}{self.lo:g}, "
                    f"{self.hi:g}{')' if self.hi_open else ']'}")
        if self.lo is not None:
            return f"{'>' if self.lo_open else '>='} {self.lo:g}"
        if self.hi is not None:
            return f"{'<' if self.hi_open else '<='} {self.hi:g}"
        return ""


class _MayBeEmpty:
    def __repr__(self):
        return "MAY_BE_EMPTY"


MAY_BE_EMPTY = _MayBeEmpty()  # marks a tuple field whose empty value () is meaningful

Seed = Annotated[int, Range(lo=0)]
Count = Annotated[int, Range(lo=1)]
NonNegInt = Annotated[int, Range(lo=0)]
Positive = Annotated[float, Range(lo=0, lo_open=True)]
NonNegative = Annotated[float, Range(lo=0)]
Probability = Annotated[float, Range(0, 1)]
OpenUnit = Annotated[float, Range(0, 1, lo_open=True, hi_open=True)]
HalfOpenUnit = Annotated[float, Range(0, 1, hi_open=True)]  # [0, 1): decays, dropout rates
AtLeastTwo = Annotated[int, Range(lo=2)]  # grids, test sets, sample counts
AboveOne = Annotated[float, Range(lo=1, lo_open=True)]

_SCALARS = (bool, int, float, str)


@dataclasses.dataclass(frozen=True)
class Rule:
    """What a valid value of one field is: a scalar type with an optional range, or a tuple of
    such elements (``length``: fixed length, or ``None`` for ``tuple[T, ...]``)."""

    base: type
    range: Range | None = None
    element: Rule | None = None  # tuples: the rule of every element
    length: int | None = None
    may_be_empty: bool = False

    def describe(self) -> str:
        if self.element is not None:
            item = self.element.describe()
            if self.length is not None:
                return f"{self.length} comma-separated values, each {item}"
            if self.may_be_empty:
                return f"a comma-separated tuple (possibly empty) of {item}"
            return f"a non-empty comma-separated tuple of {item}"
        if self.base is str:
            return "a non-empty str"
        if self.base is bool:
            return "bool (true/false)"
        if self.range is not None and str(self.range):
            return f"{self.base.__name__} {self.range}"
        return "finite float" if self.base is float else self.base.__name__

    def problem(self, value) -> str | None:
        """``None`` if ``value`` follows the rule, else what is wrong with it."""
        if self.element is not None:
            if not isinstance(value, tuple):
                return "not a tuple"
            if self.length is not None and len(value) != self.length:
                return f"{len(value)} element(s)"
            if not value and not self.may_be_empty:
                return "an empty tuple"
            for i, v in enumerate(value):
                why = self.element.problem(v)
                if why is not None:
                    return f"element {i} is {v!r}" + ("" if why == "out of range" else f" ({why})")
            return None
        if self.base is bool:
            return None if isinstance(value, bool) else "not a bool"
        if self.base is int:
            if isinstance(value, bool) or not isinstance(value, int):
                return "not an int"
        elif self.base is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return "not a number"
            if not math.isfinite(value):
                return "not finite"
        elif self.base is str:
            if not isinstance(value, str):
                return "not a str"
            return None if value.strip() else "empty"
        if self.range is not None and value not in self.range:
            return "out of range"
        return None


def _rule(hint, key: str) -> Rule:
    ranges, may_be_empty = [], False
    if typing.get_origin(hint) is Annotated:
        hint, *extras = typing.get_args(hint)
        for x in extras:
            if isinstance(x, Range):
                ranges.append(x)
            elif x is MAY_BE_EMPTY:
                may_be_empty = True
    if len(ranges) > 1:
        raise TypeError(f"config field {key!r}: more than one Range")
    if typing.get_origin(hint) is tuple:
        if ranges:
            raise TypeError(f"config field {key!r}: put the Range on the element type")
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return Rule(tuple, element=_rule(args[0], key), may_be_empty=may_be_empty)
        if may_be_empty:
            raise TypeError(f"config field {key!r}: a fixed-length tuple cannot be empty")
        elements = {_rule(a, key) for a in args}
        if len(elements) != 1:
            raise TypeError(f"config field {key!r}: mixed tuple {hint} is not supported")
        return Rule(tuple, element=elements.pop(), length=len(args))
    if hint not in _SCALARS:
        raise TypeError(f"config field {key!r} of type {hint} has no validation rule")
    if may_be_empty:
        raise TypeError(f"config field {key!r}: MAY_BE_EMPTY applies to tuples only")
    if ranges and hint not in (int, float):
        raise TypeError(f"config field {key!r}: a Range applies to int and float only")
    return Rule(hint, ranges[0] if ranges else None)


@functools.cache
def rules(cls) -> dict[str, Rule]:
    """The rule of every field of the dataclass ``cls``, from its annotations."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return {f.name: _rule(hints[f.name], f.name) for f in dataclasses.fields(cls)}


def _parse_scalar(text: str, base: type):
    text = text.strip()
    if base is bool:
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(text)
    if base is str:
        return text
    return base(text)


def parse_value(cls, key: str, text: str):
    """The value of field ``key`` of ``cls`` written as ``text`` (``--set key=text``); raises
    :class:`ConfigError` naming the key, the expected and the given text."""
    rule = rules(cls)[key]
    try:
        if rule.element is None:
            return _parse_scalar(text, rule.base)
        if not text.strip():
            return ()
        parts = text.split(",")
        if any(not p.strip() for p in parts):
            raise ConfigError(key, f"--set {key}={text}: empty element in a comma-separated "
                                   f"list; expected {rule.describe()}")
        return tuple(_parse_scalar(p, rule.element.base) for p in parts)
    except ValueError as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(key, f"--set {key}={text}: expected {rule.describe()}, "
                               f"got {text!r}") from None


def check_value(cls, key: str, value, *, text: str | None = None) -> None:
    """Raise :class:`ConfigError` if ``value`` breaks the rule of field ``key`` of ``cls``."""
    rule = rules(cls)[key]
    why = rule.problem(value)
    if why is not None:
        where = f"--set {key}={text}" if text is not None else key
        if text is not None and text.strip() and not isinstance(value, str):
            shown = text.strip()  # as the user wrote it
        else:
            shown = (",".join(map(str, value)) or "()") if isinstance(value, tuple) else repr(value)
        detail = "" if why == "out of range" else f" ({why})"
        raise ConfigError(key, f"{where}: expected {rule.describe()}, got {shown}{detail}")


def validate(cfg) -> None:
    """Check every field of the config ``cfg`` against its declared rule."""
    for key in rules(type(cfg)):
        check_value(type(cfg), key, getattr(cfg, key))


def _cgroup_limit() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = open(path).read().strip()
        except OSError:
            continue
        if text.isdigit():
            return int(text)
    return None


@functools.cache
def memory_bytes() -> int | None:
    """This machine's memory: physical memory, or the cgroup limit when lower (``None`` if
    neither can be read)."""
    total = None
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        try:
            for line in open("/proc/meminfo"):
                if line.startswith("MemTotal:"):
                    total = int(line.split()[1]) * 1024
        except OSError:
            pass
    limit = _cgroup_limit()
    if limit is not None and (total is None or limit < total):
        total = limit
    return total


def _count(n) -> str:
    if isinstance(n, float) or n < 10**300:
        return f"{float(n):.3g}"
    return f"~1e{len(str(n)) - 1}"  # beyond float range: its order of magnitude


def _human(n) -> str:
    if isinstance(n, float) and not math.isfinite(n):
        return f"{n} B"
    if n >= 1024**6:
        return f"{_count(n // 1024**5)} PiB"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover


def check_size(cfg, dtype: str, memory: int | None = None) -> None:
    """Raise :class:`ConfigError` if the largest array of ``cfg`` (from its
    ``array_sizes()``) in ``dtype`` does not fit in ``memory`` bytes (default: this machine's
    memory)."""
    memory = memory_bytes() if memory is None else memory
    if memory is None:
        return
    if not hasattr(cfg, "array_sizes"):  # tests/test_cli_validation.py requires one
        return
    try:
        sizes: dict[str, Any] = cfg.array_sizes()
    except OverflowError:  # a count beyond the float range met a float factor
        raise ConfigError("", "the largest array is too large to count (a size beyond the "
                              "float range); it cannot fit in memory") from None
    itemsize = 8 if dtype == "float64" else 4
    expr, n = max(sizes.items(), key=lambda kv: kv[1])
    if n * itemsize > memory:
        fields = [f for f in dict.fromkeys(re.findall(r"[A-Za-z_]\w*", expr))
                  if f in rules(type(cfg))]
        raise ConfigError(fields[0] if fields else expr,
                          f"{expr} = {_count(n)} {dtype} values ({_human(n * itemsize)}) would "
                          f"not fit in this machine's memory ({_human(memory)}); lower "
                          f"{' or '.join(fields) or 'the sizes'}")
