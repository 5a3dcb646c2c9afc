"""The dead-number policy (smpp.md §6 defaults, per-operator overrides)."""

import msgspec
import pytest

from engine import config
from engine.sched.prune import HARD, OK, SOFT, PrunePolicy
from engine.store.records import Outcome

DAY = 86400.0


@pytest.fixture
def policy():
    return PrunePolicy(config.parse(b'[[operators]]\nname = "mts"\nhard_errors = [66]\n'))


@pytest.mark.parametrize(
    ("stat", "err", "kind"),
    [
        ("DELIVRD", 0, OK),
        ("UNDELIV", 1, HARD),
        ("UNDELIV", 44, HARD),
        ("UNDELIV", 27, SOFT),
        ("UNDELIV", 32, SOFT),
        ("UNDELIV", None, SOFT),
        ("REJECTD", 11, HARD),
        ("REJECTD", 34, SOFT),
        ("EXPIRED", 0, SOFT),
        ("UNKNOWN", None, SOFT),
    ],
)
def test_default_classification(policy, stat, err, kind):
    assert policy.classify(stat, err) == kind


def test_per_operator_codes(policy):
    assert policy.classify("UNDELIV", 66, "mts") == HARD
    assert policy.classify("UNDELIV", 1, "mts") == SOFT  # its own table replaces the default
    assert policy.classify("UNDELIV", 66, "other") == SOFT


def outcomes(*items):
    return [Outcome(stat, err, at) for stat, err, at in items]


def test_two_hard_failures_prune(policy):
    assert not policy.dead(outcomes(("UNDELIV", 1, 0)))
    assert policy.dead(outcomes(("UNDELIV", 1, 0), ("EXPIRED", 0, 1), ("UNDELIV", 5, 2)))


def test_soft_failures_need_a_run_and_a_span(policy):
    quick = outcomes(*[("EXPIRED", 0, i * 3600) for i in range(5)])
    assert not policy.dead(quick)  # five in five hours: not yet
    spread = outcomes(*[("UNDELIV", 27, i * 2 * DAY) for i in range(5)])
    assert policy.dead(spread)
    broken = spread[:2] + outcomes(("DELIVRD", 0, 5 * DAY)) + spread[2:]
    assert not policy.dead(broken)


def test_ttl_from_config():
    p = PrunePolicy(config.parse(b'[prune]\nprune_ttl = "30d"\n'))
    assert p.ttl == 30 * DAY
    assert msgspec.structs.fields(Outcome)
