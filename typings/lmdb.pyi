# py-lmdb's own stubs type every key and value as bytes | memoryview (its buffers=True
# mode, which Volley never uses): for the type checker, lmdb is untyped.
from typing import Any

def __getattr__(name: str) -> Any: ...
