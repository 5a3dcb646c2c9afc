"""Logs of `volley run` and `volley serve`: text or JSON lines, to stderr or a rotated file.

Context travels as ``extra=`` fields (``log.info("paused", extra={"operator": "mts"})``):
the JSON formatter writes them as keys of the line's object, the text formatter
appends them as ``key=value``. ``[log] file`` rotates at ``max_mb`` keeping
``keep`` old files (FILE.1 is the newest). Several engine processes never share
one file: each process passes its own ``tag`` and writes FILE with the tag
before the suffix (``volley.log`` → ``volley.w0.log``), since rotation by
several writers of one file loses lines.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.config import Config

ROOT = "volley"
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


def context(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a call passed with ``extra=``."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: t (ISO 8601 UTC), level, logger, msg, then the context."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "t": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update(context(record))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message key=value ...``."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = context(record)
        if not fields:
            return text
        head, sep, tail = text.partition("\n")  # a traceback stays below the fields
        pairs = " ".join(f"{k}={_text(v)}" for k, v in fields.items())
        return f"{head} {pairs}{sep}{tail}"


def _text(value: Any) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if not text or " " in text or '"' in text else text


def setup(cfg: Config, *, as_json: bool = False, tag: str = "") -> logging.Handler:
    """Send the ``volley`` loggers where ``[log]`` says; ``as_json`` forces JSON lines."""
    conf = cfg.log
    if conf.file:
        path = Path(cfg.resolve(conf.file))
        if tag:
            path = path.with_name(f"{path.stem}.{tag}{path.suffix}")
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=conf.max_mb << 20, backupCount=conf.keep, encoding="utf-8"
        )
    else:
        handler = logging.StreamHandler(sys.stderr)
    if as_json or conf.json:
        handler.setFormatter(JsonFormatter())
    else:
        label = f"[{tag}]" if tag else ""
        layout = f"%(asctime)s %(levelname)s %(name)s{label}: %(message)s"
        handler.setFormatter(TextFormatter(layout))
    root = logging.getLogger(ROOT)
    for old in root.handlers:
        old.close()
    root.handlers[:] = [handler]
    root.setLevel(conf.level.upper())
    return handler


def message_debug(log: logging.Logger, event: str, **fields: Any) -> None:
    """One message's state change at DEBUG (batch, id, number, ...), at no cost when off."""
    if log.isEnabledFor(logging.DEBUG):
        log.debug(event, extra=fields)
