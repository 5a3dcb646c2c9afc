"""The control channel's frames: typed requests and replies, length-prefixed msgpack."""

import msgspec
import pytest

from engine.control import protocol as p


def test_requests_round_trip_through_frames():
    reader = p.FrameReader()
    requests = [
        p.Hello(client="tui"),
        p.Pause(operator="mts"),
        p.SetTps(operator="mts", tps=50),
        p.StopNumber(number="+79161234567"),
        p.Drain(),
    ]
    stream = b"".join(p.frame(r) for r in requests)
    bodies = [b for i in range(0, len(stream), 7) for b in reader.feed(stream[i : i + 7])]
    assert [p.decode_request(b) for b in bodies] == requests


def test_replies_decode():
    snap = p.Snapshot(
        at=1.0, states={"queued": 3}, binds=[p.BindView(name="a#0", operator="a", state="bound")]
    )
    (body,) = p.FrameReader().feed(p.frame(snap))
    assert p.decode_reply(body) == snap


def test_unknown_or_malformed_requests_are_errors_not_crashes():
    with pytest.raises(msgspec.ValidationError):
        p.decode_request(msgspec.msgpack.encode({"type": "Format", "disk": "C:"}))
    with pytest.raises(msgspec.DecodeError):
        p.decode_request(b"\xc1garbage")


def test_oversized_frames_are_refused():
    with pytest.raises(p.FrameError, match="exceeds"):
        p.FrameReader(max_frame=10).feed(p.LENGTH.pack(11) + b"x" * 11)


class Failing:
    """A handler whose every answer fails: the server must survive it."""

    async def snapshot(self):
        raise OSError("disk on fire")

    async def act(self, request, uid):
        raise RuntimeError("no")


@pytest.mark.trio
async def test_a_failing_handler_gets_error_replies_and_the_server_lives_on(tmp_path):
    import trio

    from engine.control.server import ControlServer

    path = tmp_path / "s.sock"
    async with trio.open_nursery() as nursery:
        await nursery.start(ControlServer(path, Failing()).serve)
        stream = await trio.open_unix_socket(str(path))
        reader = p.FrameReader()

        async def reply():
            while True:
                bodies = reader.feed(await stream.receive_some(65536))
                if bodies:
                    return p.decode_reply(bodies[0])

        await stream.send_all(p.frame(p.Drain()))
        assert (await reply()).message == "Drain failed: no"
        await stream.send_all(p.frame(p.Subscribe(interval=5)))
        assert (await reply()).message == "snapshot failed: disk on fire"
        await stream.send_all(p.frame(p.Hello()))
        assert await reply() == p.Hello(client="volley-engine")
        await stream.aclose()
        nursery.cancel_scope.cancel()
