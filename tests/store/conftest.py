"""The store the store tests share: a real LMDB in tmp_path, checked when the test ends."""

import pytest

from engine.store import Store


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "db")
    yield s
    s.check()  # counters equal what they count, every message in one place
    s.close()
