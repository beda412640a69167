"""``retain ui``: serve the web application over the storage (``pip install 'retain[ui]'``)."""

from __future__ import annotations

import argparse

from ._registry import EXIT_OK, PARSERS, command
from .browse import existing_storage

__all__ = ["ui"]


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535 (0: any free port), got {text!r}")
    return value


def _ui_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=_port, default=8787, help="port (default 8787; 0: any free port)")
    parser.add_argument(
        "--token",
        help="a secret every request must carry; required beyond loopback, generated and printed "
        "in the URL when not given",
    )
    parser.epilog = (
        "Read-only: it never writes to the storage. Views: overview, results tables (sort, "
        "--where filters), details with files and output, compare, sweep plots, live. "
        "docs/ui.md documents its JSON endpoints."
    )


PARSERS["ui"] = _ui_parser


@command("ui", "serve a read-only web application over the storage (pip install 'retain[ui]')")
def ui(args: argparse.Namespace) -> int:
    from ..ui import serve  # starlette, uvicorn and plotly are optional: retain[ui]

    store = existing_storage()
    try:
        serve(store, host=args.host, port=args.port, token=args.token)
    except KeyboardInterrupt:
        pass
    return EXIT_OK
