"""How the SQLite index stores config leaves, and the SQL of its queries.

`config_values.value` is typed so that SQL comparisons agree with Python's: numbers as
INTEGER/REAL (``1 == 1.0``), strings as TEXT, None as the empty BLOB ``x''``, booleans as the
one-byte BLOBs ``x'00'``/``x'01'`` (so ``True != 1``), and lists, empty dicts and interface
references as BLOBs of their canonical JSON. SQLite orders numbers < TEXT < BLOB, so every
range is bounded to its type: ``> 5`` is ``value > 5 AND value < ''``.

Integers beyond SQLite's 64 bits are stored as the nearest REAL (beyond the floats, as an
infinity), which keeps them in their place among the numbers but not exact near their own
magnitude. So a condition whose bound is that large (at least 2**53 in magnitude, where floats
stop holding every integer) is asked in SQL as a wider test (``<=`` for ``<``, the REAL for
the integer) and checked again, exactly, in Python over the rows it returns.
"""

from __future__ import annotations

from .._sql import canonical_json, from_where

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from typing import Any

    from ...query import Condition, Filter, Query

_TRUE = b"\x01"
_FALSE = b"\x00"
_NONE = b""


def sql_value(value: Any) -> Any:
    """The stored form of a config leaf (see the module docstring)."""
    kind = type(value)
    if kind is str or kind is float:
        return value
    if value is None:
        return _NONE
    if kind is int:
        return value if -(2**63) <= value < 2**63 else _real(value)
    if kind is bool:
        return _TRUE if value else _FALSE
    return canonical_json(value).encode("utf-8")


def _real(value: int) -> float:
    """The REAL nearest an integer beyond 64 bits: rounding keeps the order of numbers."""
    try:
        return float(value)
    except OverflowError:  # beyond the largest float (2**1024 and more)
        return float("inf") if value > 0 else float("-inf")


_EXACT_REAL = 2**53  # every integer of smaller magnitude is a float, exactly


def _approximate(value: Any) -> bool:
    """Whether SQL comparisons with the number `value` may differ from Python's."""
    kind = type(value)
    return (kind is int or kind is float) and not -_EXACT_REAL < value < _EXACT_REAL


def rechecked(query: Query) -> list[Condition]:
    """The config conditions of `query` that SQL asks approximately (a bound of 2**53 or more
    in magnitude): their rows are checked again in Python."""
    out = []
    for condition in query.conditions:
        if condition.field.source != "config":
            continue
        op, value = condition.filter.op, condition.filter.value
        values = value if op in ("in", "between") else (value,)
        if any(_approximate(v) for v in values):
            out.append(condition)
    return out


def compile_query(
    conn: sqlite3.Connection, query: Query, classes: list[int] | None, *, names: bool = True,
) -> tuple[str, list[Any]] | None:
    """The FROM/WHERE clause of `query` and its arguments; None if nothing can match.
    `classes` are the class numbers `query` covers (None: all). Conditions that `rechecked`
    names are asked in a wider form: check them again over the rows. `names`: join the
    classes (``c.module``, ``c.qualname``, ``c.kind``) even when no condition needs them."""
    if classes is not None and not classes:
        return None
    where: list[str] = []
    args: list[Any] = []
    config = [c for c in query.conditions if c.field.source == "config"]
    scope = classes if classes is not None else [row[0] for row in conn.execute("SELECT class FROM classes")]
    scope_sql = ",".join("?" * len(scope))
    source = "interfaces i"
    if config:
        # Drive from the first config condition (an index seek), join the rows, then probe
        # the other conditions by row.
        first, *rest = config
        test, values = value_test(first.filter, "v.value")
        source = "config_values v CROSS JOIN interfaces i ON i.row = v.row"
        where.append(f"v.class IN ({scope_sql}) AND v.key = ? AND {test}")
        args += [*scope, first.field.path, *values]
        for condition in rest:
            test, values = value_test(condition.filter, "w.value")
            where.append(
                f"i.row IN (SELECT w.row FROM config_values w WHERE w.class IN ({scope_sql})"
                f" AND w.key = ? AND {test})"
            )
            args += [*scope, condition.field.path, *values]
    elif classes is not None:
        where.append(f"i.class IN ({scope_sql})")
        args += scope
    if names or any(c.field.source == "column" and c.field.path in ("module", "class", "kind") for c in query.conditions):
        source += " JOIN classes c ON c.class = i.class"
    return from_where(source, where, args, query, value_test)


def value_test(filter: Filter, column: str) -> tuple[str, list[Any]]:
    """SQL that is true where `column` passes `filter`, and its arguments (for a bound that
    `_approximate` names, true for a superset: check again)."""
    op, value = filter.op, filter.value
    if op in ("lt", "gt") and _approximate(value):
        op = "le" if op == "lt" else "ge"  # the stored REAL of a value beyond may equal it
    if op == "eq":
        return f"{column} = ?", [sql_value(value)]
    if op == "in":
        if not value:
            return "0", []
        return f"{column} IN ({','.join('?' * len(value))})", [sql_value(v) for v in value]
    if op == "between":
        low, high = value
        return f"{column} >= ? AND {column} <= ?", [sql_value(low), sql_value(high)]
    symbol = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}[op]
    text = type(value) is str
    if op in ("lt", "le"):
        # Numbers sort below text and text below blobs: bound the range to the bound's type.
        return (f"{column} {symbol} ? AND {column} >= ''", [value]) if text else (f"{column} {symbol} ?", [sql_value(value)])
    upper = "x''" if text else "''"
    return f"{column} {symbol} ? AND {column} < {upper}", [sql_value(value)]
