"""The durable LMDB queue (see engine/store/store.py for the layout and guarantees)."""

from engine.store.records import (
    FINAL,
    STATES,
    Counts,
    EnqueueResult,
    Fail,
    MarkSent,
    MarkUnknown,
    Message,
    NewMessage,
    Op,
    RecordMo,
    RecordReceipt,
    Requeue,
    Result,
    Schedule,
    Skip,
)
from engine.store.errors import StoreError
from engine.store.lock import StoreLock, StoreLocked
from engine.store.store import Store

__all__ = [
    "FINAL",
    "STATES",
    "Counts",
    "EnqueueResult",
    "Fail",
    "MarkSent",
    "MarkUnknown",
    "Message",
    "NewMessage",
    "Op",
    "RecordMo",
    "RecordReceipt",
    "Requeue",
    "Result",
    "Schedule",
    "Skip",
    "Store",
    "StoreError",
    "StoreLock",
    "StoreLocked",
]
