"""A DataTable updated in place: only changed cells are touched, so 4 Hz does not flicker."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowKey


class SyncedTable(DataTable):
    COLUMNS: tuple[str, ...] = ()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._shown: dict[str, tuple[Any, ...]] = {}
        self._pending: dict[str, tuple[Any, ...]] | None = None

    def on_mount(self) -> None:
        for label in self.COLUMNS:
            self.add_column(label, key=label)
        if self._pending is not None:
            self.sync(self._pending)

    def sync(self, rows: dict[str, tuple[Any, ...]]) -> None:
        """Make the table show ``rows`` (key → cells), in their order for new keys."""
        if len(self.columns) < len(self.COLUMNS):
            self._pending = rows  # not mounted yet
            return
        for key in [k for k in self._shown if k not in rows]:
            self.remove_row(key)
            del self._shown[key]
        for key, cells in rows.items():
            old = self._shown.get(key)
            if old is None:
                self.add_row(*cells, key=key)
            elif old != cells:
                for label, before, after in zip(self.COLUMNS, old, cells, strict=True):
                    if before != after:
                        self.update_cell(key, label, after)
            self._shown[key] = cells

    @property
    def selected(self) -> str | None:
        """The key of the row under the cursor."""
        if not self.row_count:
            return None
        try:
            key: RowKey = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except CellDoesNotExist:
            return None
        return key.value
