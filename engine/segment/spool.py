"""The segmentation job's files: a base read twice, and each segment's spool of messages.

A spool is length-prefixed msgpack lists of NewMessage (4-byte big-endian
length, then the list), written a chunk at a time and read back as a stream.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import msgspec

from engine.store import NewMessage


def rewindable(stream: io.TextIOBase, tmp: Path, closing: contextlib.ExitStack) -> io.TextIOBase:
    """The stream if it can be read twice, else a copy of it in ``tmp``."""
    try:
        if stream.seekable():
            return stream
    except (AttributeError, ValueError, OSError):
        pass
    copy = tmp / "customers.csv"
    with open(copy, "w", encoding="utf-8", newline="") as out:
        shutil.copyfileobj(stream, out)
    return closing.enter_context(open(copy, encoding="utf-8", newline=""))


def spooled(path: Path) -> Iterator[NewMessage]:
    decoder = msgspec.msgpack.Decoder(list[NewMessage])
    with open(path, "rb") as f:
        while header := f.read(4):
            yield from decoder.decode(f.read(int.from_bytes(header, "big")))
