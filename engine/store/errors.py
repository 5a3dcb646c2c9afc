"""The store's one exception type."""


class StoreError(Exception):
    """The store cannot do what was asked; the message says why and what to do."""
