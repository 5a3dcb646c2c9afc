"""Fixed snapshots for the TUI's tests and its snapshot images."""

from engine.control import protocol as p

AT = 1_795_000_000.0


def snapshot(binds: int = 3, batches: int = 4, live: bool = True) -> p.Snapshot:
    ops = ["mts", "beeline", "orange"]
    bind_views = [
        p.BindView(
            name=f"{ops[i % 3]}#{i // 3}",
            operator=ops[i % 3],
            state=["bound", "bound", "backoff"][i % 3],
            tps_now=[180.0, 95.0, 0.0][i % 3],
            tps_limit=[200.0, 100.0, 50.0][i % 3],
            window_used=[60, 12, 0][i % 3],
            window=64,
            submitted=10_000 + 137 * i,
            errors=i % 4,
            reconnects=(i % 3 == 2) * 3,
            last_error="connection refused" if i % 3 == 2 else "",
        )
        for i in range(binds)
    ]
    operators = [
        p.OperatorView(name=o, up=o != "orange", tps_now=t, tps_limit=t + 10, tps_configured=t + 10)
        for o, t in zip(ops, (180.0, 95.0, 0.0), strict=True)
    ]
    batch_counts = {
        f"reactivation-sleep{30 * (i + 1)}-20261123": {
            "delivered": 900 - 70 * (i % 12),
            "undelivered": 20 + i,
            "skipped": 10 * (i % 5),
            "sent": 50,
            "queued": 70 * (i % 12),
        }
        for i in range(batches)
    }
    states = {
        "queued": 600,
        "scheduled": 1200,
        "inflight": 72,
        "sent": 200,
        "delivered": 3000,
        "undelivered": 86,
        "failed": 4,
        "skipped": 60,
    }
    return p.Snapshot(
        at=AT,
        live=live,
        pid=4242,
        operators=operators,
        binds=bind_views,
        states=states,
        batches=batch_counts,
        paused_batches=["reactivation-sleep60-20261123"] if batches > 1 else [],
        receipts={"delivered": 3000, "undelivered": 86, "expired": 3, "rejected": 1},
        top_errors=[("receipt UNDELIV err:001", 61), ("0x58 Throttling error", 12)],
        windows=[
            p.WindowView(kind="marketing", open=True, next_open="", zone="Europe/Moscow"),
            p.WindowView(
                kind="tcpa", open=False, next_open="2026-11-24T08:00-05:00", zone="America/New_York"
            ),
        ],
        scheduled_by_hour={"2026-11-24T05:00+00:00": 1200},
        rates={"submit": 275.0, "receipts": 260.0},
        history=[float(200 + (i * 37) % 90) for i in range(120)],
        totals={"submitted": 3350, "failed": 4, "receipts": 3090},
        events=[f"10:{i:02d}:00 bind mts#0: bound" for i in range(5)],
        dead=17,
        stopped=5,
        prunes=["2026-11-23 09:58 +79160000017 (UNDELIV err 1)"],
        engagement={
            batch: {"clicks": 40 + 9 * i, "clickers": 31 + 7 * i, "replies": 3 + i, "optouts": i}
            for i, batch in enumerate(batch_counts)
        },
    )
