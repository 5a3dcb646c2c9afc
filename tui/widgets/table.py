"""A DataTable updated in place: only changed cells are touched, so 4 Hz does not flicker."""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowKey

from engine.control import protocol as p


class SyncedTable(DataTable):
    COLUMNS: tuple[str, ...] = ()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._shown: dict[str, tuple[Any, ...]] = {}
        self._pending: p.Snapshot | None = None

    def rows_of(self, snap: p.Snapshot) -> dict[str, tuple[Any, ...]]:
        """Key → cells of every row the snapshot makes."""
        raise NotImplementedError

    def on_mount(self) -> None:
        for label in self.COLUMNS:
            self.add_column(label, key=label)

    def show(self, snap: p.Snapshot) -> None:
        """Show the snapshot now if visible; a hidden table catches up when shown."""
        if len(self.columns) < len(self.COLUMNS) or not self.region.area:
            self._pending = snap
            return
        self._pending = None
        self.sync(self.rows_of(snap))

    def sync(self, rows: dict[str, tuple[Any, ...]]) -> None:
        """Make the table show ``rows`` (key → cells), in their order for new keys.

        Changed cells go through ``update_cell`` in one ``batch_update`` (one repaint);
        a cell that grew widens its column (a narrower one leaves it: shrinking makes
        DataTable measure the whole column, per cell).
        """
        with self.app.batch_update():
            for key in [k for k in self._shown if k not in rows]:
                self.remove_row(key)
                del self._shown[key]
            for key, cells in rows.items():
                old = self._shown.get(key)
                if old is None:
                    self.add_row(*cells, key=key)
                elif old != cells:
                    self._set_cells(key, old, cells)
                self._shown[key] = cells

    def _set_cells(self, key: str, old: tuple[Any, ...], new: tuple[Any, ...]) -> None:
        for label, before, after in zip(self.COLUMNS, old, new, strict=True):
            if before != after:
                wider = _width(after) > _width(before)
                self.update_cell(key, label, after, update_width=wider)

    def on_show(self) -> None:
        self.call_after_refresh(self._catch_up)

    def on_resize(self) -> None:
        self.call_after_refresh(self._catch_up)

    def _catch_up(self) -> None:
        if self._pending is not None:
            self.show(self._pending)

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


def _width(cell: Any) -> int:
    """Terminal cells a value takes (a Text's plain text, markup left in a str: an upper bound)."""
    return cell.cell_len if isinstance(cell, Text) else cell_len(str(cell))
