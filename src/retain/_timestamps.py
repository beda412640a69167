"""The time stamps retain writes (claims, heartbeats, ends, events, records): ISO 8601 UTC."""

from __future__ import annotations

__all__ = ["now_iso", "parse_iso"]


def now_iso() -> str:
    """The current time, ISO 8601 UTC with microseconds and a ``Z``."""
    # datetime is imported here, not above: `import retain` must not load it (records are
    # stamped through interface.py, which every import of retain loads).
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> float:
    """Seconds since the epoch of an ISO 8601 time written by `now_iso`."""
    from datetime import datetime  # as in now_iso

    return datetime.fromisoformat(text).timestamp()
