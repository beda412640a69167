"""`retain ui` shows the tags and note of a result on its page."""

from __future__ import annotations

from typing import Any, ClassVar

from retain import Interface, Storage
from retain.ui._data import Source


class Noted(Interface):
    Config: ClassVar[Any] = {"n": 0}


def test_detail_has_tags_and_note(store: Storage) -> None:
    plain = Noted({"n": 1}).commit()
    run = Noted({"n": 2}).commit().tag("best", "paper").note("the one")
    source = Source(store)
    shown = source.detail(run.id[:8])
    assert shown["tags"] == ["best", "paper"] and shown["note"] == "the one"
    assert (source.detail(plain.id)["tags"], source.detail(plain.id)["note"]) == ([], None)
    run.untag("paper").note("")
    shown = source.detail(run.id)
    assert shown["tags"] == ["best"] and shown["note"] is None
