"""Named sentinels: "not given" is not the same as `None`."""

from __future__ import annotations

import enum
from typing import Final, Literal


class _NotGiven(enum.Enum):
    NOT_GIVEN = "NOT_GIVEN"

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __bool__(self) -> Literal[False]:
        return False


#: Marks an argument that was not passed (where `None` is a meaningful value).
NOT_GIVEN: Final = _NotGiven.NOT_GIVEN
NotGiven = Literal[_NotGiven.NOT_GIVEN]
