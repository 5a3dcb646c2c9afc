"""Campaign reports: per batch (a campaign's step) and per campaign, from the store.

Messages and parts, each state, skipped by reason, delivered, unique clickers
and clicks, replies and opt-outs (engine/store/campaign.py), the click-through
rate (unique clickers over delivered), and the cost: the parts that reached an
SMSC (sent, and every final state a receipt or its timeout gave), times the
route's ``[[operators]] price_per_part`` where one is set. Messages are read
once, in one pass over the store; engagement comes from its per-batch counters.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable

import msgspec

from engine.config import Config
from engine.store import Store
from engine.store import records as r

BILLED = frozenset(
    {r.SENT, r.DELIVERED, r.UNDELIVERED, r.EXPIRED, r.REJECTED, r.DELETED, r.UNKNOWN}
)
PENDING_STATES = (r.QUEUED, r.SCHEDULED, r.INFLIGHT, r.SENT)
CSV_COLUMNS = (
    "row", "campaign", "segment", "batch", "messages", "parts", "delivered", "undelivered",
    "expired", "rejected", "unknown", "failed", "skipped", "cancelled", "pending", "clickers",
    "clicks", "ctr", "replies", "repliers", "optouts", "cost_parts", "cost", "unpriced_parts",
    "skipped_by_reason",
)  # fmt: skip


class StepReport(msgspec.Struct):
    batch: str
    campaign: str = ""
    segment: str = ""
    created: float = 0.0
    messages: int = 0
    parts: int = 0
    states: dict[str, int] = {}
    skipped: dict[str, int] = {}  # by reason
    delivered: int = 0
    clickers: int = 0
    clicks: int = 0
    replies: int = 0
    repliers: int = 0
    optouts: int = 0
    ctr: float | None = None  # clickers / delivered (None: nothing delivered)
    cost_parts: int = 0  # parts that reached an SMSC
    cost: float | None = None  # in money, where the routes have a price_per_part
    unpriced_parts: int = 0  # billed parts on routes without a price


class CampaignReport(msgspec.Struct):
    campaign: str
    steps: list[str]  # batch ids, in the order they were created
    total: StepReport


class Report(msgspec.Struct):
    batches: list[StepReport]
    campaigns: list[CampaignReport]


class UnknownBatch(LookupError):
    pass


def build(
    cfg: Config, store: Store, batches: Iterable[str] = (), campaign: str | None = None
) -> Report:
    """The report of ``batches`` and of every batch of ``campaign`` (of every batch if
    neither is given). Raises UnknownBatch naming a batch the store does not have."""
    infos = store.batch_infos()
    wanted = list(dict.fromkeys(batches))
    for batch in wanted:
        if batch not in infos:
            raise UnknownBatch(f"no batch {batch!r}")
    if campaign is not None:
        steps = [b for b, i in infos.items() if i.campaign == campaign]
        if not steps:
            raise UnknownBatch(f"no batch of campaign {campaign!r}")
        wanted += [b for b in steps if b not in wanted]
    if not wanted and campaign is None:
        wanted = list(infos)
    wanted.sort(key=lambda b: (infos[b].created, b))
    steps_by_batch = {
        b: StepReport(b, infos[b].campaign, infos[b].segment, infos[b].created) for b in wanted
    }
    prices = {op.name: op.price_per_part for op in cfg.operators}
    _count_messages(store, steps_by_batch, prices)
    for batch, stats in store.step_stats(wanted).items():
        _engagement(steps_by_batch[batch], stats)
    rows = list(steps_by_batch.values())
    names = list(dict.fromkeys(s.campaign for s in rows if s.campaign))
    campaigns = [
        CampaignReport(name, [s.batch for s in rows if s.campaign == name],
                       total([s for s in rows if s.campaign == name], name))
        for name in names
    ]  # fmt: skip
    return Report(rows, campaigns)


def _count_messages(
    store: Store, steps: dict[str, StepReport], prices: dict[str, float | None]
) -> None:
    priced = any(p is not None for p in prices.values())
    states: dict[str, Counter[str]] = {b: Counter() for b in steps}
    skipped: dict[str, Counter[str]] = {b: Counter() for b in steps}
    for msg in store.messages():
        step = steps.get(msg.batch)
        if step is None:
            continue
        step.messages += 1
        step.parts += msg.parts
        states[msg.batch][msg.state] += 1
        if msg.state == r.SKIPPED:
            skipped[msg.batch][msg.reason or "unknown"] += 1
        if msg.state in BILLED:
            step.cost_parts += msg.parts
            price = prices.get(msg.operator or msg.route)
            if price is None:
                step.unpriced_parts += msg.parts
            else:
                step.cost = (step.cost or 0.0) + price * msg.parts
    for batch, step in steps.items():
        step.states = dict(sorted(states[batch].items()))
        step.skipped = dict(skipped[batch].most_common())
        step.delivered = step.states.get(r.DELIVERED, 0)
        if priced and step.cost is None:
            step.cost = 0.0


def _engagement(step: StepReport, stats: r.StepStats) -> None:
    step.clickers, step.clicks = stats.clickers, stats.clicks
    step.replies, step.repliers, step.optouts = stats.replies, stats.repliers, stats.optouts
    step.ctr = step.clickers / step.delivered if step.delivered else None


def total(steps: list[StepReport], campaign: str) -> StepReport:
    """A campaign's steps summed (its CTR: all clickers over all delivered)."""
    out = StepReport("", campaign)
    states: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    for s in steps:
        for name in ("messages", "parts", "delivered", "clickers", "clicks", "replies",
                     "repliers", "optouts", "cost_parts", "unpriced_parts"):  # fmt: skip
            setattr(out, name, getattr(out, name) + getattr(s, name))
        if s.cost is not None:
            out.cost = (out.cost or 0.0) + s.cost
        states.update(s.states)
        skipped.update(s.skipped)
    out.states, out.skipped = dict(sorted(states.items())), dict(skipped.most_common())
    out.ctr = out.clickers / out.delivered if out.delivered else None
    return out


# -- rendering --------------------------------------------------------------------


def to_json(report: Report) -> bytes:
    return msgspec.json.encode(report)


def csv_row(kind: str, s: StepReport) -> dict[str, object]:
    st = s.states
    pending = sum(st.get(k, 0) for k in PENDING_STATES)
    return {
        "row": kind, "campaign": s.campaign, "segment": s.segment, "batch": s.batch,
        "messages": s.messages, "parts": s.parts, "delivered": s.delivered,
        "undelivered": st.get(r.UNDELIVERED, 0), "expired": st.get(r.EXPIRED, 0),
        "rejected": st.get(r.REJECTED, 0),
        "unknown": st.get(r.UNKNOWN, 0) + st.get(r.DELETED, 0), "failed": st.get(r.FAILED, 0),
        "skipped": st.get(r.SKIPPED, 0), "cancelled": st.get(r.CANCELLED, 0), "pending": pending,
        "clickers": s.clickers, "clicks": s.clicks,
        "ctr": "" if s.ctr is None else f"{s.ctr:.4f}", "replies": s.replies,
        "repliers": s.repliers, "optouts": s.optouts, "cost_parts": s.cost_parts,
        "cost": "" if s.cost is None else f"{s.cost:.2f}", "unpriced_parts": s.unpriced_parts,
        "skipped_by_reason": ";".join(f"{k}:{v}" for k, v in s.skipped.items()),
    }  # fmt: skip


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for step in report.batches:
        writer.writerow(csv_row("batch", step))
    for c in report.campaigns:
        writer.writerow(csv_row("campaign", c.total))
    return out.getvalue()


_TABLE = (  # heading, width, cell
    ("step", 0, lambda s: s.segment or s.batch),
    ("messages", 9, lambda s: f"{s.messages:,}"),
    ("parts", 8, lambda s: f"{s.parts:,}"),
    ("delivered", 10, lambda s: f"{s.delivered:,}"),
    ("clickers", 9, lambda s: f"{s.clickers:,}"),
    ("clicks", 7, lambda s: f"{s.clicks:,}"),
    ("CTR", 7, lambda s: "-" if s.ctr is None else f"{100 * s.ctr:.1f}%"),
    ("replies", 8, lambda s: f"{s.replies:,}"),
    ("opt-outs", 9, lambda s: f"{s.optouts:,}"),
    ("cost parts", 11, lambda s: f"{s.cost_parts:,}"),
    ("cost", 10, lambda s: "-" if s.cost is None else f"{s.cost:,.2f}"),
)


def render(report: Report) -> str:
    """For people: a table per campaign (its steps and the total), then each batch's
    states and skip reasons."""
    if not report.batches:
        return "no batches"
    lines: list[str] = []
    grouped = {c.campaign: c for c in report.campaigns}
    loose = [s for s in report.batches if not s.campaign]
    by_batch = {s.batch: s for s in report.batches}
    for name, c in grouped.items():
        lines += [f"campaign {name}", *_table([by_batch[b] for b in c.steps], c.total), ""]
    if loose:
        lines += ["batches outside any campaign", *_table(loose, None), ""]
    for s in report.batches:
        states = ", ".join(f"{k} {v:,}" for k, v in s.states.items()) or "none"
        lines.append(f"{s.batch}: {states}")
        if s.skipped:
            lines.append("  skipped: " + ", ".join(f"{k} {v:,}" for k, v in s.skipped.items()))
        if s.unpriced_parts and s.cost is not None:
            lines.append(f"  {s.unpriced_parts:,} billed parts on routes without price_per_part")
    return "\n".join(lines).rstrip()


def _table(steps: list[StepReport], summed: StepReport | None) -> list[str]:
    first = max([len("step"), len("total"), *(len(_TABLE[0][2](s)) for s in steps)])
    widths = [first, *(w for _, w, _ in _TABLE[1:])]

    def row(cells: list[str]) -> str:
        head, *rest = cells
        cells_right = (c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))
        return "  " + head.ljust(widths[0]) + "".join(cells_right)

    out = [row([h for h, _, _ in _TABLE])]
    out += [row([cell(s) for _, _, cell in _TABLE]) for s in steps]
    if summed is not None and len(steps) > 1:
        out.append(row(["total", *(cell(summed) for _, _, cell in _TABLE[1:])]))
    return out


def chart(report: Report, path: str) -> None:
    """A PNG of each campaign's funnel per step: delivered, clickers, repliers, opt-outs
    (needs matplotlib: the ``chart`` extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    campaigns = report.campaigns or [CampaignReport("", [s.batch for s in report.batches],
                                                    total(report.batches, ""))]  # fmt: skip
    by_batch = {s.batch: s for s in report.batches}
    fig, axes = plt.subplots(len(campaigns), 1, figsize=(9, 3.5 * len(campaigns)), squeeze=False)
    series = (("delivered", "tab:blue"), ("clickers", "tab:green"), ("repliers", "tab:orange"),
              ("optouts", "tab:red"))  # fmt: skip
    for ax, c in zip(axes[:, 0], campaigns, strict=True):
        steps = [by_batch[b] for b in c.steps]
        width = 0.8 / len(series)
        for i, (name, color) in enumerate(series):
            xs = [j + i * width for j in range(len(steps))]
            ax.bar(xs, [getattr(s, name) for s in steps], width, label=name, color=color)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(steps))])
        ax.set_xticklabels([s.segment or s.batch for s in steps])
        ax.set_title(f"campaign {c.campaign}" if c.campaign else "batches")
        ax.set_ylabel("messages")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
