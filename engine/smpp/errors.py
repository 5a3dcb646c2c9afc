"""Protocol errors that say whose fault it was (h11's LocalProtocolError / RemoteProtocolError)."""

from __future__ import annotations


class ProtocolError(Exception):
    """Base of the SMPP protocol layer's errors."""


class LocalProtocolError(ProtocolError):
    """We tried something illegal: a PDU in the wrong state, a full window, a bad field."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something we cannot accept.

    ``command_status`` is what the generic_nack (or the response) should carry;
    ``command_id`` and ``sequence`` are those of the offending PDU when they
    could be read (0 otherwise); ``field`` and ``offset`` locate the problem in
    the PDU; ``pdu_status`` is the command_status the offending PDU itself carried
    (for a malformed response: whether the peer meant to accept). ``fatal`` means
    the byte stream cannot be resynchronised (a bad command_length): the
    connection must be closed after the nack.
    """

    def __init__(
        self,
        message: str,
        *,
        command_status: int,
        command_id: int = 0,
        sequence: int = 0,
        field: str = "",
        offset: int = 0,
        fatal: bool = False,
        pdu_status: int = 0,
    ) -> None:
        super().__init__(message)
        self.command_status = command_status
        self.command_id = command_id
        self.sequence = sequence
        self.field = field
        self.offset = offset
        self.fatal = fatal
        self.pdu_status = pdu_status
