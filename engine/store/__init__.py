"""The durable LMDB queue (engine/store/store.py: the guarantees; layout.py: the bytes)."""

from engine.store.errors import StoreError
from engine.store.lock import StoreLock, StoreLocked
from engine.store.records import (
    FINAL,
    MAX_BATCH_BYTES,
    MAX_ID_CHARS,
    STATES,
    Claimed,
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
    Reroute,
    Result,
    Schedule,
    Skip,
)
from engine.store.store import Store

__all__ = [
    "FINAL",
    "MAX_BATCH_BYTES",
    "MAX_ID_CHARS",
    "STATES",
    "Claimed",
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
    "Reroute",
    "Result",
    "Schedule",
    "Skip",
    "Store",
    "StoreError",
    "StoreLock",
    "StoreLocked",
]
