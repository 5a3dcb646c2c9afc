import pytest

from .esme import Esme


@pytest.fixture(autouse=True)
def _close_test_esmes():
    yield
    while Esme.opened:
        Esme.opened.pop().stream.socket._sock.close()
