"""What a segmentation run did (or, with --dry-run, would do), as text for people."""

from __future__ import annotations

from engine.segment.job import Report, SegmentResult


def render(report: Report, dry_run: bool) -> str:
    lines = [
        f"campaign {report.campaign}, as of {report.as_of:%Y-%m-%d}"
        + (" (dry run: nothing enqueued)" if dry_run else ""),
        f"customers read: {report.customers:,}",
        "excluded before segmenting: " + _counts(report.excluded),
        *(f"  {line}" for line in report.bad_lines),
        f"in no segment (nothing to send): {report.not_targeted:,}",
    ]
    for seg in report.segments:
        lines += ["", *_segment(seg, dry_run)]
    if report.removal_list:
        lines += ["", f"listed for removal written to {report.removal_list}"]
    total = sum(s.total_parts for s in report.segments)
    lines += ["", f"total: {_n(total, 'SMS part')}"]
    return "\n".join(lines)


def _segment(seg: SegmentResult, dry_run: bool) -> list[str]:
    if seg.action == "list":
        return [f"segment {seg.name}: {seg.recipients:,} listed for removal (not messaged)"]
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


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")
