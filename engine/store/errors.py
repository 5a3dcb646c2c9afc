"""The store's one exception type."""


class StoreError(Exception):
    """The store cannot do what was asked; the message says why and what to do."""


class DuplicateId(StoreError):
    """One load has the same id twice with different content (``first`` and ``line``: 0
    when the producer gave no line numbers)."""

    def __init__(self, batch: str, ext_id: str, first: int, line: int) -> None:
        where = f" (lines {first} and {line})" if first and line else ""
        super().__init__(f"batch {batch!r}: id {ext_id!r} twice with different content{where}")
        self.ext_id, self.first, self.line = ext_id, first, line
