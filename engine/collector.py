"""The cyclic garbage collector, set for processes that make objects by the million."""

import gc


def tune() -> None:
    """What start-up made stays out of the cyclic collector, and young objects are collected
    every 50,000 allocations instead of 700: the engine's hot path, an enqueue and a
    segmentation make short-lived objects by the million, which reference counting frees
    (cycles are rare); with the defaults the collector walked them over and over (an
    enqueue of 300,000 lines: 94,000/s, tuned 111,000/s)."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
