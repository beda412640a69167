"""Named sentinels: "not given" is not the same as `None`."""

from __future__ import annotations


class NotGivenType:
    """The type of `NOT_GIVEN`: an argument that was not passed (where None means something)."""

    _instance: NotGivenType | None = None

    def __new__(cls) -> NotGivenType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGivenType()
