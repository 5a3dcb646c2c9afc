"""What a segmentation run did (or, with --dry-run, would do), as text for people."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from engine.segment.job import Report, SegmentResult
from engine.segment.limits import show


def render(report: Report, dry_run: bool) -> str:
    duplicates = report.excluded.get("duplicate", 0)
    lines = [
        f"campaign {report.campaign}, as of {report.as_of:%Y-%m-%d}"
        + (" (dry run: nothing enqueued)" if dry_run else ""),
        f"customers read: {report.customers:,}",
        "excluded before segmenting: " + _counts(report.excluded),
        *(f"  {line}" for line in report.bad_lines),
        *(
            ["  duplicate phones: the row kept has consent, else the latest activity:"]
            if report.duplicate_lines
            else []
        ),
        *(f"  {line}" for line in report.duplicate_lines),
        *(
            [f"  ... and {duplicates - len(report.duplicate_lines):,} more"]
            if duplicates > len(report.duplicate_lines)
            else []
        ),
        f"in no segment (nothing to send): {report.not_targeted:,}",
    ]
    for seg in report.segments:
        lines += ["", *_segment(seg, dry_run, report)]
    if report.removal_list:
        lines += ["", f"listed for removal written to {report.removal_list}"]
    total = sum(s.total_parts for s in report.segments)
    cost = ""
    if report.priced:
        cost = f", cost {_money(sum(s.cost for s in report.segments))}"
        unpriced = sum(s.unpriced_parts for s in report.segments)
        if unpriced:
            cost += f" (+ {_n(unpriced, 'part')} on routes without price_per_part)"
    lines += ["", f"total: {_n(total, 'SMS part')}{cost}"]
    return "\n".join(lines)


def _segment(seg: SegmentResult, dry_run: bool, report: Report) -> list[str]:
    if seg.action == "list":
        line = f"segment {seg.name}: {seg.recipients:,} listed for removal (not messaged)"
        return [line + (f", {seg.suppressed:,} stop-listed" if seg.suppressed else "")]
    lines = [
        f"segment {seg.name} -> batch {seg.batch}",
        f"  recipients: {seg.recipients:,}",
        "  excluded: " + _counts(seg.excluded),
        "  parts: "
        + (
            ", ".join(
                f"{enc} {_n(seg.messages[enc], 'message')} / {_n(seg.parts[enc], 'part')}"
                for enc in sorted(seg.messages)
            )
            or "none"
        )
        + f"; total {_n(seg.total_parts, 'part')}",
    ]
    if report.priced:
        unpriced = seg.unpriced_parts
        lines.append(
            f"  cost: {_money(seg.cost)}"
            + (f" (+ {_n(unpriced, 'part')} without a price)" if unpriced else "")
        )
    timing = _timing(seg, ZoneInfo(report.zone))
    if timing:
        lines.append(f"  timing: {timing}")
    lines += [f"  sample: {s}" for s in seg.samples]
    if seg.error:
        lines.append(f"  ERROR: {seg.error}")
    if seg.enqueued is not None and not dry_run:
        e = seg.enqueued
        lines.append(
            f"  enqueued: {e.queued:,} queued"
            + (f" ({e.scheduled:,} scheduled for later)" if e.scheduled else "")
            + (f", {e.duplicates:,} already there" if e.duplicates else "")
        )
    return lines


def _timing(seg: SegmentResult, zone: ZoneInfo) -> str:
    parts = []
    if seg.not_before is not None:
        parts.append(f"not before {show(seg.not_before, zone)}")
    if seg.expires is not None:
        parts.append(f"expires {show(seg.expires, zone)}")
    if seg.later:
        parts.append(f"{_n(seg.later, 'message')} wait for the send window")
    return "; ".join(parts)


def _money(amount: float) -> str:
    return f"{amount:,.2f}"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")
