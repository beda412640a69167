"""How the PostgreSQL index stores config leaves, and the SQL of its queries.

A config leaf is stored so that SQL comparisons agree with Python's: numbers in `num`
(``numeric``: integers and integral floats exactly, other floats as their shortest repr, so
``1 == 1.0``, integers beyond 2**63 compare exactly, and every order agrees with Python's),
everything else in `val` (``bytea``) behind a one-byte tag: ``s`` + UTF-8 for strings (byte
order is code point order, as in Python), ``N`` for None, ``F``/``T`` for booleans (so
``True != 1``), ``J`` + canonical JSON for lists, empty dicts and interface references. String
ranges are bounded to the ``s`` tag (``> "a"`` is ``val > 'sa' AND val < 't'``). Every text
column is ``COLLATE "C"``: the server's locale never changes an order or a comparison. The
index on ``(class, key, num, val, row)`` makes each condition an index-only range of rows; the
rows of all conditions are intersected, then read by primary key.
"""

from __future__ import annotations

from .._sql import canonical_json, from_where

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    import psycopg

    from ...query import Condition, Filter, Query

_NONE = b"N"
_FALSE = b"F"
_TRUE = b"T"
_STR = b"s"
_STR_END = b"t"  # the first tag after strings: bounds string ranges
_JSON = b"J"


def stored_key(key: str) -> str:
    # PostgreSQL text cannot hold NUL; such keys (if any) are stored and asked for escaped.
    return key.replace("\x00", "\\u0000") if "\x00" in key else key


def stored_value(value: Any) -> tuple[str | None, bytes | None]:
    """The stored form of a config leaf: (num, val), exactly one of them not None (see the
    module docstring); `num` is the text of a ``numeric``."""
    kind = type(value)
    if kind is int:
        return str(value), None
    if kind is float:
        # Integral floats exactly, as integers (1.0 == 1, 2.0**60 == 2**60). Other floats are
        # below 2**52, and their shortest repr lies inside the interval of reals that round to
        # them, which holds no integer and no other float: equality and order with every int
        # and float are Python's. (The text also sends faster than a Decimal.)
        return (str(int(value)) if value.is_integer() else repr(value)), None
    if kind is str:
        return None, _STR + value.encode("utf-8", "surrogatepass")
    if value is None:
        return None, _NONE
    if kind is bool:
        return None, _TRUE if value else _FALSE
    return None, _JSON + canonical_json(value).encode("utf-8", "surrogatepass")


def compile_query(
    conn: psycopg.Connection[Any], s: str, query: Query, classes: list[int] | None
) -> tuple[str, list[Any]] | None:
    """The FROM/WHERE clause of `query` and its arguments; None if nothing can match.
    `s` is the quoted schema name, `classes` the class numbers `query` covers (None: all)."""
    if classes is not None and not classes:
        return None
    where: list[str] = []
    args: list[Any] = []
    config = [c for c in query.conditions if c.field.source == "config"]
    if config:
        rows = matching_rows(conn, s, config, classes)
        if not rows:
            return None
        # The rows are known and counted: the planner picks primary key lookups or a scan
        # from their true number (its own estimates for `num`, mixed over every key, are
        # poor, and a wrong one costs a scan of every row).
        where.append("i.row = ANY(%b::bigint[])")
        args.append(rows)
    elif classes is not None:
        where.append("i.class = ANY(%b::int[])")
        args.append(classes)
    return from_where(
        f"{s}.interfaces i JOIN {s}.classes c ON c.class = i.class", where, args, query, column_test,
        tags=f"{s}.tags", mark="%s",
    )


def matching_rows(conn: psycopg.Connection[Any], s: str, config: list[Condition], classes: list[int] | None) -> list[int]:
    """The rows whose config passes every condition in `config`: one index range (an
    index-only scan) per condition, intersected by the server."""
    if classes is None:
        # The value index leads with the class: give every class when all are asked for.
        classes = [int(row[0]) for row in conn.execute(f"SELECT class FROM {s}.classes")]
    selects = []
    args: list[Any] = []
    for condition in config:
        test, values = value_test(condition.filter, "v")
        selects.append(
            f"SELECT v.row FROM {s}.config_values v WHERE v.class = ANY(%b::int[])"
            f" AND v.key = %s AND {test}"
        )
        args += [classes, stored_key(condition.field.path), *values]
    found = conn.execute(" INTERSECT ".join(selects), args).fetchall()
    # One condition may meet a row twice (keys "a.b" and "a": {"b": ...} both dot to "a.b").
    return list({row[0]: None for row in found}) if len(selects) == 1 else [row[0] for row in found]


def value_test(filter: Filter, alias: str) -> tuple[str, list[Any]]:
    """SQL that is true where the config value in `alias` passes `filter`, and its arguments."""
    num, val = f"{alias}.num", f"{alias}.val"
    op, value = filter.op, filter.value
    if op == "eq":
        n, v = stored_value(value)
        return (f"{num} = %s::numeric", [n]) if v is None else (f"{num} IS NULL AND {val} = %s", [v])
    if op == "in":
        stored = [stored_value(option) for option in value]
        numbers = [n for n, v in stored if v is None]
        others = [v for n, v in stored if v is not None]
        tests: list[str] = []
        args: list[Any] = []
        if numbers:
            tests.append(f"{num} = ANY(%b::text[]::numeric[])")
            args.append(numbers)
        if others:
            tests.append(f"({num} IS NULL AND {val} = ANY(%b::bytea[]))")
            args.append(others)
        return ("(" + " OR ".join(tests) + ")", args) if tests else ("FALSE", [])
    if op == "between":
        low, high = value
        if type(low) is str:
            return f"{num} IS NULL AND {val} >= %s AND {val} <= %s", [stored_value(low)[1], stored_value(high)[1]]
        return f"{num} >= %s::numeric AND {num} <= %s::numeric", [stored_value(low)[0], stored_value(high)[0]]
    symbol = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}[op]
    if type(value) is not str:
        return f"{num} {symbol} %s::numeric", [stored_value(value)[0]]
    bound = stored_value(value)[1]
    # Strings only: a range stays within the string tag.
    if op in ("lt", "le"):
        return f"{num} IS NULL AND {val} {symbol} %s AND {val} >= %s", [bound, _STR]
    return f"{num} IS NULL AND {val} {symbol} %s AND {val} < %s", [bound, _STR_END]


def column_test(filter: Filter, column: str) -> tuple[str, list[Any]]:
    """SQL that is true where a text `column` passes `filter` (only strings ever match)."""
    op, value = filter.op, filter.value
    if op == "eq":
        return (f"{column} = %s", [value]) if type(value) is str else ("FALSE", [])
    if op == "in":
        options = [v for v in value if type(v) is str]
        return (f"{column} = ANY(%b::text[])", [options]) if options else ("FALSE", [])
    if op == "between":
        low, high = value
        return (f"{column} >= %s AND {column} <= %s", [low, high]) if type(low) is str else ("FALSE", [])
    if type(value) is not str:
        return "FALSE", []
    symbol = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}[op]
    return f"{column} {symbol} %s", [value]
