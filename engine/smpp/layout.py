"""The byte layout of SMPP 3.4 PDUs: the header, fixed fields, C-Octet String limits.

Shared by the encoder and the decoder. Limits include the terminating NUL, as
in the specification.
"""

from __future__ import annotations

import struct

HEADER = struct.Struct(">IIII")
DEFAULT_MAX_LENGTH = 65536
B = struct.Struct(">B")
H = struct.Struct(">H")
TLV = struct.Struct(">HH")
ADDR = struct.Struct(">BB")
MSG_MID = struct.Struct(">BBB")
MSG_TAIL = struct.Struct(">BBBBB")
DATA_MID = struct.Struct(">BBB")
QUERY_TAIL = struct.Struct(">BB")
ZERO_ADDR = struct.Struct(">BBB")
ZERO_MID = struct.Struct(">BBBB")
ZERO_TAIL = struct.Struct(">BBBBBB")

# (max length including NUL) of the C-Octet strings
SYSTEM_ID, PASSWORD, SYSTEM_TYPE, ADDRESS_RANGE = 16, 9, 13, 41
SERVICE_TYPE, ADDR_LEN, TIME, MESSAGE_ID, ALERT_ADDR = 6, 21, 17, 65, 65
