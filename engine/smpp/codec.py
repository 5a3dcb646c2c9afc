"""The SMPP 3.4 binary codec: PDU Structs to bytes (engine/smpp/encode.py) and back,
with a streaming decoder (engine/smpp/decode.py). Pure functions over bytes."""

from engine.smpp.decode import Decoder, decode
from engine.smpp.encode import command_name, encode
from engine.smpp.layout import DEFAULT_MAX_LENGTH, HEADER

__all__ = ["DEFAULT_MAX_LENGTH", "HEADER", "Decoder", "command_name", "decode", "encode"]
