"""The SQLite index (the default): the index itself in `_index`, its connection (retries,
fork safety, damage detection) in `_connection`, bulk inserts in `_insert`, the SQL of queries
in `_query`, and the schema and its migrations in `_schema`."""

from __future__ import annotations

from ._index import SCHEMA_VERSION, SqliteIndex, filesystem_type

__all__ = ["SCHEMA_VERSION", "SqliteIndex", "filesystem_type"]
