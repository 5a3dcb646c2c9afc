"""SMPP over TLS: the bind trusts the operator's CA and nothing else."""

import pytest
import trio
import trustme

from engine.service import Engine

from .helpers import enqueue, make_config, operator, run_until_drained, simulator, states

pytestmark = pytest.mark.trio

RU = [f"+7916{i:07d}" for i in range(20)]


@pytest.fixture
def pki(tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "smsc.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    other = trustme.CA()
    other.cert_pem.write_to_path(str(tmp_path / "other-ca.pem"))
    return tmp_path


async def test_messages_go_over_tls_to_an_smsc_signed_by_the_operators_ca(nursery, pki):
    smsc = await simulator(nursery, tls_cert=str(pki / "smsc.pem"))
    cfg = make_config(pki, operator("local", smsc.port, tls=True, tls_ca=str(pki / "ca.pem")))
    store = enqueue(cfg, RU)
    await run_until_drained(cfg, store)
    assert states(store) == {"delivered": 20}
    assert smsc.counters["receipts_acked"] == 20
    store.close()


async def test_an_smsc_with_an_untrusted_certificate_gets_nothing(nursery, pki):
    smsc = await simulator(nursery, tls_cert=str(pki / "smsc.pem"))
    op = operator("local", smsc.port, tls=True, tls_ca=str(pki / "other-ca.pem"),
                  reconnect_min="0.05s")  # fmt: skip
    cfg = make_config(pki, op)
    store = enqueue(cfg, RU)
    engine = Engine(cfg, store)
    async with trio.open_nursery() as inner:
        await inner.start(engine.run)
        bind = engine.operators["local"].binds[0]
        with trio.fail_after(10):
            while bind.stats.reconnects < 2:
                await trio.sleep(0.02)
        assert "CERTIFICATE_VERIFY_FAILED" in bind.stats.last_error
        await engine.stop()
    assert smsc.counters["submit_sm"] == 0
    assert states(store) == {"queued": 20}
    store.close()


async def test_a_missing_ca_file_is_a_config_error_naming_it(pki):
    from engine.config import ConfigError

    cfg = make_config(pki, operator("local", 2775, tls=True, tls_ca="nope.pem"))
    store = enqueue(cfg, [])
    with pytest.raises(ConfigError, match=r"operators 'local': tls_ca: .*nope\.pem"):
        Engine(cfg, store)
    store.close()
