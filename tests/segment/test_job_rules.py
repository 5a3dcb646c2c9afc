"""Segmentation rules that close gaps: consent words, duplicate phones, names,
caps that cannot be forgotten, deadlines on the messages, parts and money."""

import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from engine import config
from engine.segment import report, rules
from engine.segment.customers import BadRow, Reader
from engine.segment.job import Job
from engine.wiring import open_store

from .test_job import AS_OF

MSK = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=MSK).timestamp()  # a Monday
HEADER = "id,phone,name,last_purchase,consent\n"
RULES = """
[campaign]
name = "c"
sender = "Shop"
[columns]
id = "id"
phone = "phone"
name = "name"
last_purchase = "last_purchase"
consent = "consent"
[[segments]]
name = "s"
when = { days_since_purchase = { ge = 30 } }
template = "{name}, hello"
template_no_name = "Hello"
"""


def job(tmp_path, base, *, rules_text=RULES, engine="", store=True, dry_run=False):
    cfg = config.parse(f'[store]\npath = "{tmp_path / "db"}"\n{engine}'.encode())
    st = open_store(cfg) if store else None
    try:
        j = Job(cfg, rules.parse(rules_text), st, as_of=AS_OF, now=NOW, dry_run=dry_run)
        result = j.run(io.StringIO(HEADER + base), "base.csv")
        messages = {m.ext_id: m for m in st.messages()} if st else {}
    finally:
        if st is not None:
            st.close()
    return result, messages


@pytest.mark.parametrize(
    ("raw", "consent"),
    [
        ("1", True),
        ("0", False),
        ("yes", True),
        ("No", False),
        ("Y", True),
        ("true", True),
        ("FALSE", False),
        ("да", True),
        ("Да.", True),
        ("НЕТ", False),
        ("da", True),
        ("DA", True),
        ("nu", False),
        ("Nu", False),
        ("de acord", True),
        ("согласен", True),
        ("не согласна", False),
        ("+", True),
        ("-", False),
        ("", False),
    ],
)
def test_consent_words_of_the_supported_languages(raw, consent):
    columns = rules.Columns(consent="c")
    reader = Reader(columns, ["phone", "c"], AS_OF, "x.csv")
    assert reader.customer(2, ["+79161234567", raw]).values["consent"] is consent


@pytest.mark.parametrize("raw", ["maybe", "2", "дa?"])
def test_an_unknown_consent_word_is_a_bad_row(raw):
    reader = Reader(rules.Columns(consent="c"), ["phone", "c"], AS_OF, "x.csv")
    with pytest.raises(BadRow, match="expected yes/no, да/нет, da/nu, true/false or 1/0"):
        reader.customer(2, ["+79161234567", raw])


def test_assumed_consent_reads_no_column():
    reader = Reader(rules.Columns(consent="assumed"), ["phone"], AS_OF, "x.csv")
    assert reader.customer(2, ["+79161234567"]).values["consent"] is True


def test_a_consented_row_wins_over_an_earlier_one_without_consent(tmp_path):
    base = (
        "old,+79161000001,Anna,2026-10-01,0\n"  # registered without consent
        "new,+79161000001,Anna,2026-10-01,да\n"  # registered again, with consent
    )
    result, messages = job(tmp_path, base)
    assert set(messages) == {"new"}
    assert result.excluded == {"duplicate": 1}
    assert result.duplicate_lines == [
        "base.csv:2: phone: +79161000001 is also on line 3, which is kept (it has consent)"
    ]


def test_the_most_recent_activity_wins_among_consented_rows(tmp_path):
    base = (
        "a,+79161000001,Anna,2026-09-01,1\n"
        "b,+79161000001,Anna,2026-10-20,1\n"  # the latest purchase
        "c,8 916 100-00-01,Anna,2026-08-01,1\n"  # the same phone, written nationally
    )
    result, messages = job(tmp_path, base)
    assert set(messages) == {"b"}
    assert result.excluded == {"duplicate": 2}
    assert [line.split(":")[1] for line in result.duplicate_lines] == ["2", "4"]
    assert all("(its activity is more recent)" in line for line in result.duplicate_lines)
    text = report.render(result, dry_run=False)
    assert "duplicate phones: the row kept has consent, else the latest activity:" in text


def test_a_base_from_a_pipe_is_read_twice(tmp_path):
    class Pipe(io.StringIO):
        def seekable(self):
            return False

    cfg = config.parse(f'[store]\npath = "{tmp_path / "db"}"\n'.encode())
    base = HEADER + "a,+79161000001,Anna,2026-09-01,0\nb,+79161000001,Anna,2026-09-01,1\n"
    j = Job(cfg, rules.parse(RULES), None, as_of=AS_OF, now=NOW, dry_run=True)
    result = j.run(Pipe(base), "<stdin>")
    assert result.excluded == {"duplicate": 1}
    assert by_segment(result)["s"].recipients == 1


def by_segment(result):
    return {s.name: s for s in result.segments}


@pytest.mark.parametrize("name", ["", "-", "N/A", "  ", "null", "?"])
def test_customers_without_a_real_name_get_the_no_name_text(tmp_path, name):
    _, messages = job(tmp_path, f"a,+79161000001,{name},2026-09-01,1\n")
    assert messages["a"].text == "Hello"


def test_a_segment_cap_without_caps_for_its_kind_is_refused(tmp_path):
    capped = RULES + 'cap = { max = 1, period = "30d" }\n'
    with pytest.raises(rules.RulesError, match=r"segment s: cap: .* no \[caps.marketing\]"):
        job(tmp_path, "", rules_text=capped)
    short = '[caps.marketing]\nmax = 5\nperiod = "7d"\n'
    with pytest.raises(rules.RulesError, match=r"period \(30 days\) is longer than the longest"):
        job(tmp_path, "", rules_text=capped, engine=short)
    long = '[caps.marketing]\nmax = 5\nperiod = "30d"\n'
    result, _ = job(tmp_path, "a,+79161000001,Anna,2026-09-01,1\n", rules_text=capped, engine=long)
    assert by_segment(result)["s"].recipients == 1


def test_a_segment_cap_counts_what_was_sent_before(tmp_path):
    capped = RULES + 'cap = { max = 1, period = "30d" }\n'
    engine = '[caps.marketing]\nmax = 5\nperiod = "30d"\n'
    cfg = config.parse(f'[store]\npath = "{tmp_path / "db"}"\n{engine}'.encode())
    st = open_store(cfg)
    from engine.sched.caps import Caps
    from engine.store import NewMessage

    st.cap_policy = Caps(cfg)
    st.enqueue("old", [NewMessage(to="+79161000001", text="x", sender="S")], now=NOW - 86400)
    assert len(st.claim("default", 1, NOW - 86400)) == 1  # a send, recorded by [caps]
    st.close()
    result, _ = job(tmp_path, "a,+79161000001,Anna,2026-09-01,1\n", rules_text=capped,
                    engine=engine)  # fmt: skip
    assert by_segment(result)["s"].excluded == {"capped": 1}


def test_relative_deadlines_go_onto_the_messages(tmp_path):
    timed = RULES + 'not_before = "+2h"\nexpires = "+3d"\n'
    result, messages = job(tmp_path, "a,+79161000001,Anna,2026-09-01,1\n", rules_text=timed)
    m = messages["a"]
    assert m.not_before == NOW + 2 * 3600
    assert m.expires == NOW + 3 * 86400
    assert m.state == "scheduled" and m.due == NOW + 2 * 3600
    seg = by_segment(result)["s"]
    assert (seg.not_before, seg.expires, seg.later) == (m.not_before, m.expires, 1)
    text = report.render(result, dry_run=False)
    assert (
        "  timing: not before 2026-11-23 12:00+03:00; expires 2026-11-26 10:00+03:00; "
        "1 message wait for the send window" in text
    )


def test_absolute_deadlines_and_campaign_defaults(tmp_path):
    timed = RULES.replace(
        'sender = "Shop"\n', 'sender = "Shop"\nexpires = "2026-12-01T00:00:00+03:00"\n'
    )
    _, messages = job(tmp_path, "a,+79161000001,Anna,2026-09-01,1\n", rules_text=timed)
    assert messages["a"].expires == datetime(2026, 12, 1, tzinfo=MSK).timestamp()


def test_a_deadline_already_past_or_before_not_before_is_refused(tmp_path):
    past = RULES + 'expires = "2026-11-22T00:00:00+03:00"\n'
    with pytest.raises(rules.RulesError, match=r"segment s: expires .* is already past"):
        job(tmp_path, "", rules_text=past)
    crossed = RULES + 'not_before = "+2d"\nexpires = "+1d"\n'
    with pytest.raises(rules.RulesError, match=r"segment s: expires .* is not after not_before"):
        job(tmp_path, "", rules_text=crossed)


def test_a_message_whose_window_opens_after_it_expires_is_excluded(tmp_path):
    # Monday 10:00 in Moscow; the window opens on Saturday: past the +3d expiry
    engine = '[windows.marketing]\ndays = ["sat"]\nhours = "10:00-18:00"\n'
    timed = RULES + 'expires = "+3d"\n'
    base = "a,+79161000001,Anna,2026-09-01,1\n"
    result, messages = job(tmp_path, base, rules_text=timed, engine=engine)
    assert messages == {}
    assert by_segment(result)["s"].excluded == {"expires_before_window": 1}


def test_the_dry_run_shows_the_cost_in_parts_and_money(tmp_path):
    engine = (
        '[[operators]]\nname = "ru"\nprefixes = ["+7916"]\nprice_per_part = 2.5\n'
        '[[operators]]\nname = "other"\n'
    )
    base = (
        "a,+79161000001,Анна,2026-09-01,1\n"  # UCS2, 1 part, 2.50
        "b,+79031000002,Anna,2026-09-01,1\n"  # routed to "other": no price
    )
    result, _ = job(tmp_path, base, engine=engine, store=False, dry_run=True)
    seg = by_segment(result)["s"]
    assert (seg.cost, seg.unpriced_parts) == (2.5, 1)
    text = report.render(result, dry_run=True)
    assert "  cost: 2.50 (+ 1 part without a price)" in text
    assert "total: 2 SMS parts, cost 2.50 (+ 1 part on routes without price_per_part)" in text
    plain, _ = job(tmp_path, base, store=False, dry_run=True)
    assert "cost" not in report.render(plain, dry_run=True)


def test_price_per_part_must_not_be_negative():
    with pytest.raises(config.ConfigError, match=r"operators\[0\].price_per_part"):
        config.parse('[[operators]]\nname = "x"\nprice_per_part = -1\n')
