"""Random sequences of everything the store does, crashes included: after every step
Store.check() holds (counters equal what they count, every pending message waits in
exactly one place, indexes point true), no message is lost, and what the model knows
of each message (claimed, sent, answered) is what the store says."""

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from engine.store import (
    Fail,
    MarkSent,
    MarkUnknown,
    NewMessage,
    RecordMo,
    RecordReceipt,
    Requeue,
    Reroute,
    Schedule,
    Skip,
    Store,
    StoreLock,
)

T0 = 1_800_000_000.0
ROUTES = ("a", "b")
BATCHES = ("x", "y", "z")
FINALS = ("delivered", "undelivered", "expired", "rejected")
STAT = {
    "delivered": "DELIVRD",
    "undelivered": "UNDELIV",
    "expired": "EXPIRED",
    "rejected": "REJECTD",
}


class Prune:
    ttl = 50.0

    def dead(self, outcomes, route):
        return len(outcomes) >= 2


class StoreMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="volley-prop-"))
        self.store = self._open()
        self.now = T0
        self.total = 0  # messages enqueued and not purged
        self.inflight = {}  # id -> token, claimed by this store object
        self.sent = {}  # smsc id -> message id, awaiting a receipt
        self.known = {}  # id -> the state the last successful operation left it in
        self.n = 0

    def _open(self):
        s = Store.open(self.dir / "db", sync=False, prune_policy=Prune())
        s.owner = b"\x01"
        return s

    def teardown(self):
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- producers and the clock ------------------------------------------------------

    @rule(
        batch=st.sampled_from(BATCHES),
        count=st.integers(1, 6),
        route=st.sampled_from(ROUTES),
        later=st.booleans(),
        number=st.integers(0, 5),
    )
    def enqueue(self, batch, count, route, later, number):
        new = [
            NewMessage(
                to=f"+7916000000{(number + i) % 8}",
                text="t",
                sender="S",
                ext_id=f"m{self.n + i}",
                route=route,
                due=self.now + 30 if later else None,
                expires=self.now + 500,
                zone_default=bool(i % 2),
            )
            for i in range(count)
        ]
        self.n += count
        try:
            result = self.store.enqueue(batch, new, now=self.now)
        except Exception as exc:  # a cancelled batch refuses new messages
            assert "was cancelled" in str(exc)
            return
        self.total += result.queued

    @rule(seconds=st.sampled_from([1.0, 31.0, 120.0]))
    def tick(self, seconds):
        self.now += seconds
        self.store.promote(self.now)

    # -- the engine's side ----------------------------------------------------------------

    @rule(route=st.sampled_from(ROUTES), n=st.integers(1, 8))
    def claim(self, route, n):
        for m in self.store.claim(route, n, self.now):
            assert m.id not in self.inflight
            assert m.route == route
            self.inflight[m.id] = m.token
            self.known[m.id] = "inflight"

    @precondition(lambda self: self.inflight)
    @rule(data=st.data(), parts=st.integers(1, 3), receipt=st.booleans(), token=st.booleans())
    def mark_sent(self, data, parts, receipt, token):
        mid = data.draw(st.sampled_from(sorted(self.inflight)))
        ids = [f"s{mid}-{self.n}-{p}" for p in range(parts)]
        self.n += 1
        op = MarkSent(
            id=mid,
            smsc_ids=ids,
            at=self.now,
            receipt=receipt,
            operator=data.draw(st.sampled_from(["", "op1"])),
            token=self.inflight[mid] if token else b"",
        )
        (result,) = self.store.apply([op])
        assert result.ok, result
        del self.inflight[mid]
        self.known[mid] = "sent"
        if receipt:
            for i in ids:
                self.sent[i] = (mid, op.operator)

    @precondition(lambda self: self.inflight)
    @rule(data=st.data(), what=st.sampled_from(["requeue", "retry", "schedule", "fail",
                                                 "skip", "unknown", "reroute"]))  # fmt: skip
    def answer(self, data, what):
        mid = data.draw(st.sampled_from(sorted(self.inflight)))
        op = {
            "requeue": Requeue(id=mid, due=0.0, reason="throttled"),
            "retry": Requeue(id=mid, due=self.now + 10, reason="0x58", retry=True),
            "schedule": Schedule(id=mid, due=self.now + 40, reason="window"),
            "fail": Fail(id=mid, status=11, description="bad", at=self.now),
            "skip": Skip(id=mid, reason="expired", at=self.now),
            "unknown": MarkUnknown(id=mid, reason="lost", at=self.now),
            "reroute": Reroute(id=mid, route="b"),
        }[what]
        (result,) = self.store.apply([op])
        assert result.ok, result
        del self.inflight[mid]
        self.known.pop(mid, None)
        if what in ("fail", "skip", "unknown"):
            self.known[mid] = {"fail": "failed", "skip": "skipped"}.get(what, what)

    @precondition(lambda self: self.sent)
    @rule(data=st.data(), state=st.sampled_from(FINALS), final=st.booleans(), twice=st.booleans())
    def receipt(self, data, state, final, twice):
        smsc_id = data.draw(st.sampled_from(sorted(self.sent)))
        mid, operator = self.sent[smsc_id]
        op = RecordReceipt(
            candidates=(smsc_id,),
            state=state,
            final=final,
            stat=STAT[state],
            err=0 if state == "delivered" else 1,
            network_error=None,
            at=self.now,
            operator=operator,
        )
        results = self.store.apply([op, op] if twice else [op])
        assert results[0].ok, results
        if twice and final:
            assert results[1].detail in ("duplicate", "undelivered", "expired", "rejected",
                                         "delivered")  # fmt: skip
        if final:
            del self.sent[smsc_id]
            state_now = self.store.get(mid).state
            if all(self.sent.get(k, (None,))[0] != mid for k in self.sent):
                assert state_now in FINALS, state_now
                self.known[mid] = state_now

    @rule(candidate=st.sampled_from(["nope", "zz"]), hold=st.booleans())
    def unmatched(self, candidate, hold):
        op = RecordReceipt(
            candidates=(candidate,), state="delivered", final=True, stat="DELIVRD", err=0,
            network_error=None, at=self.now, hold=hold,
        )  # fmt: skip
        assert self.store.apply([op])[0].detail == "unmatched"

    @rule(stop=st.booleans(), number=st.integers(0, 7))
    def mo(self, stop, number):
        op = RecordMo(source=f"+7916000000{number}", destination="S", text="STOP", at=self.now,
                      stop=stop)  # fmt: skip
        assert self.store.apply([op])[0].ok

    # -- housekeeping and operators ------------------------------------------------------

    @rule()
    def sweep(self):
        self.store.expire_sent(self.now - 60, self.now)
        for smsc_id, (mid, _) in list(self.sent.items()):
            if self.store.get(mid).state != "sent":
                del self.sent[smsc_id]
                self.known.pop(mid, None)

    @rule(limit=st.integers(1, 10))
    def purge(self, limit):
        before = sum(self.store.counts().states.values())
        gone = self.store.purge(self.now + 1, limit)
        assert sum(self.store.counts().states.values()) == before - gone
        self.total -= gone
        self.known = {m: s for m, s in self.known.items() if self.store.get(m) is not None}

    @rule(batch=st.sampled_from(BATCHES), paused=st.booleans())
    def pause(self, batch, paused):
        if self.store.batch_progress(batch):
            self.store.pause_batch(batch, paused)

    @rule(batch=st.sampled_from(BATCHES))
    def cancel(self, batch):
        if self.store.batch_progress(batch):
            self.store.cancel_batch(batch, self.now)

    @rule(number=st.integers(0, 7))
    def stop_number(self, number):
        self.store.stop([f"+7916000000{number}"], "opt-out", self.now)

    @rule(number=st.integers(0, 7))
    def restore_number(self, number):
        self.store.restore([f"+7916000000{number}"])

    @rule()
    def reroute_all(self):
        self.store.reroute(lambda n: "a" if n.endswith(("0", "1", "2")) else "b")

    @rule()
    def crash(self):
        """The engine dies: what it had in flight goes back to the queue (resend)."""
        self.store.close()
        self.store = self._open()
        with StoreLock.acquire(self.dir / "db") as lock:
            back = self.store.recover_inflight(lock)
        assert back == len(self.inflight)
        for mid in self.inflight:
            assert self.store.get(mid).state in ("queued", "cancelled")
            self.known.pop(mid, None)
        self.inflight = {}

    # -- after every step -------------------------------------------------------------------

    @invariant()
    def consistent(self):
        self.store.check()
        counts = self.store.counts()
        assert sum(counts.states.values()) == self.total
        assert counts.states["inflight"] == len(self.inflight)
        assert self.store.in_flight == len(self.inflight)
        with self.store.env.begin(db=self.store.db["inflight"]) as txn:  # no claim set outlives
            sets = txn.stat(self.store.db["inflight"])["entries"]  # its last id in flight
        assert sets == len({seq for seq, *_ in self.store._live.values()})
        for mid, state in self.known.items():
            assert self.store.get(mid).state == state, (mid, state)


TestStoreMachine = StoreMachine.TestCase
TestStoreMachine.settings = settings(
    max_examples=60,
    stateful_step_count=35,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
