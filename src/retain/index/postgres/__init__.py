"""The PostgreSQL index (many machines, one view): the index itself in `_index`, its
connection (retries, fork safety) in `_connection`, the SQL of queries in `_query`, and the
schema and its migrations in `_schema`. psycopg loads when the first index is opened."""

from __future__ import annotations

from ._index import DEFAULT_SCHEMA, SCHEMA_VERSION, PostgresIndex, hide_password

__all__ = ["DEFAULT_SCHEMA", "SCHEMA_VERSION", "PostgresIndex", "hide_password"]
