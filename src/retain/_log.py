"""retain's logger: ``logging.getLogger("retain")`` and its children (``"retain.index"``,
``"retain.runs"``...) report what retain recovers from on its own (an index repaired from the
journal or a storage scan, a heartbeat or metrics write that failed and is tried again).

Silent by default: "retain" has a `logging.NullHandler`, and no level or handler of the
application's is changed. ``logging.basicConfig(level=logging.INFO)`` shows everything.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging

_silenced = False


def logger(name: str = "retain") -> logging.Logger:
    """The logger `name` (``"retain"`` or a child of it), with the NullHandler in place."""
    # Imported on first use: `logging` loads `threading`, which `import retain` avoids.
    import logging

    global _silenced
    if not _silenced:
        logging.getLogger("retain").addHandler(logging.NullHandler())
        _silenced = True
    return logging.getLogger(name)
