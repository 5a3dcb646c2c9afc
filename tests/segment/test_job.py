"""The segmentation job on a real LMDB store, with a base full of edge cases."""

import io
import time
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from engine import config
from engine.segment import report, rules
from engine.segment.customers import BadRow, Reader, parse_date
from engine.segment.job import Job
from engine.segment.sample import write
from engine.wiring import open_store

AS_OF = date(2026, 11, 23)
RULES = Path(__file__).resolve().parents[2] / "engine" / "data" / "reactivation.toml"
GOLDEN = Path(__file__).parent / "golden" / "dry_run.txt"

# ; separated, with a BOM; national and formatted numbers; a missing name; consent
# withheld; a duplicate phone; dates in four formats; Cyrillic (UCS2) and Latin names
EDGE = (
    "\ufeffcustomer_id;phone;first_name;last_purchase;last_response;signup;sms_consent;"
    "bonus_points\n"
    "a1;+79161000001;Анна;2026-10-09;;2025-01-01;1;150\n"  # 45 days: sleep30, UCS2
    "a2;8 (916) 100-00-02;Ivan;09.10.2026;;2025-01-01;yes;150\n"  # national: sleep30, GSM?
    "a3;+7 916 100 00 03;;09/10/2026;;2025-01-01;true;150\n"  # no name: the fallback
    "a4;+79161000004;Olga;2026-08-25T10:30:00;;2025-01-01;0;150\n"  # no consent
    "a5;+79161000001;Anna;2026-10-09;;2025-01-01;1;150\n"  # the same phone as a1
    "a6;12345;Bad;2026-10-09;;2025-01-01;1;150\n"  # not a phone number
    "a7;+79161000007;Пётр;2026-08-01;;2025-01-01;1;\n"  # sleep90 without points: excluded
    "a8;+79161000008;Maria;2025-01-01;;2024-01-01;1;10\n"  # dead: listed, not messaged
    "a9;+79161000009;Sergey;2026-11-20;2026-11-21;2024-01-01;1;10\n"  # active: nothing
    "a10;+79161000010;Elena;;;2026-09-01;1;10\n"  # never responded, signed up 83 days ago
)


@pytest.fixture
def cfg(tmp_path):
    return config.parse(f'[store]\npath = "{tmp_path / "db"}"\n'.encode())


CAPS = '[caps.marketing]\nmax = 4\nperiod = "30d"\n'


@pytest.fixture
def capped(tmp_path):
    """A config whose [caps] covers marketing: what segment caps need."""
    return config.parse(f'[store]\npath = "{tmp_path / "db"}"\n{CAPS}'.encode())


def run(cfg, text, *, dry_run=False, store=True, source="customers.csv", removal=None):
    st = open_store(cfg) if store else None
    try:
        job = Job(cfg, rules.load(RULES), st, as_of=AS_OF, dry_run=dry_run, removal_list=removal)
        return job.run(io.StringIO(text.removeprefix("\ufeff")), source)
    finally:
        if st is not None:
            st.close()


def by_name(result):
    return {s.name: s for s in result.segments}


def test_every_edge_case_lands_where_it_should(cfg, tmp_path):
    removal = tmp_path / "removal.csv"
    result = run(cfg, EDGE, removal=removal)
    assert result.customers == 10
    assert result.excluded == {"duplicate": 1, "invalid_number": 1, "no_consent": 1}
    assert result.bad_lines == ["customers.csv:7: phone: '12345' is not a valid number"]
    assert result.not_targeted == 1
    seg = by_name(result)
    assert seg["sleep30"].recipients == 3
    assert seg["sleep90"].excluded == {"missing_points": 1}
    assert seg["dead"].recipients == 1
    assert seg["never"].recipients == 1
    store = open_store(cfg)
    texts = {m.ext_id: m for m in store.messages()}
    store.close()
    assert set(texts) == {"a1", "a2", "a3", "a10"}
    assert texts["a2"].to == "+79161000002"
    assert texts["a3"].text.startswith("Как вам у нас? ")  # no name: template_no_name
    assert result.duplicate_lines == [
        "customers.csv:6: phone: +79161000001 is also on line 2, which is kept "
        "(the first of alike rows)"
    ]
    assert "utm_content=sleep30" in texts["a1"].text
    assert texts["a1"].sender == "Shop"
    assert all("{" not in m.text for m in texts.values())
    assert removal.read_text().splitlines()[1].startswith("dead,9,a8,+79161000008,Maria")


def test_encodings_and_parts_are_counted(cfg, tmp_path):
    flat = rules.load(RULES)
    text = RULES.read_text().replace(
        'template = "{name}, как вам у нас? 3 вопроса, 1 минута: {link}"',
        'template = "{name}, how are we doing? 3 questions: {link}"',
    )
    (tmp_path / "r.toml").write_text(text)
    st = open_store(cfg)
    job = Job(cfg, rules.load(tmp_path / "r.toml"), st, as_of=AS_OF, dry_run=True)
    result = job.run(io.StringIO(EDGE), "customers.csv")
    st.close()
    sleep30 = by_name(result)["sleep30"]
    assert sleep30.messages == {"GSM": 1, "UCS2": 2}  # "Анна" and the Cyrillic fallback
    assert sleep30.parts["GSM"] == 1
    assert flat.segments[0].name == "dead"


def test_a_rerun_the_same_day_adds_nothing(cfg):
    first = run(cfg, EDGE)
    second = run(cfg, EDGE)
    assert sum(s.enqueued.queued for s in first.segments if s.enqueued) == 4
    # a segment does not repeat itself: whoever it sent to is already_sent, not queued
    assert sum(s.enqueued.queued for s in second.segments if s.enqueued) == 0
    assert sum(s.excluded.get("already_sent", 0) for s in second.segments) == 4


def test_stop_listed_dead_and_capped_numbers_are_excluded(tmp_path):
    # sends are recorded per number where [caps] covers the kind
    cfg = config.parse(
        f'[store]\npath = "{tmp_path / "db"}"\n[caps.marketing]\nmax = 10\nperiod = "30d"\n'
    )
    st = open_store(cfg)
    st.stop(["+79161000001"], "complaint", time.time())
    st.mark_dead("+79161000002", [], time.time(), 86400)
    st.close()
    text = RULES.read_text().replace(
        '[[segments]]\nname = "sleep30"',
        '[[segments]]\nname = "sleep30"\ncap = { max = 1, period = "30d" }',
    )
    path = tmp_path / "r.toml"
    path.write_text(text)
    st = open_store(cfg)
    from engine.store import MarkSent, NewMessage

    st.enqueue("old", [NewMessage(to="+79161000003", text="x", sender="S", ext_id="o")], now=0)
    (m,) = st.claim("default", 1, time.time())
    st.apply([MarkSent(id=m.id, smsc_ids=["1"], at=time.time())])
    job = Job(cfg, rules.load(path), st, as_of=AS_OF)
    result = job.run(io.StringIO(EDGE), "customers.csv")
    st.close()
    assert by_name(result)["sleep30"].excluded == {"capped": 1, "dead": 1, "stopped": 1}


def test_a_message_over_the_part_limit_fails_its_segment_and_enqueues_nothing(cfg, tmp_path):
    long = "Очень длинный текст. " * 30
    text = RULES.read_text().replace("как вам у нас? 3 вопроса, 1 минута: {link}", long + "{link}")
    (tmp_path / "r.toml").write_text(text)
    st = open_store(cfg)
    job = Job(cfg, rules.load(tmp_path / "r.toml"), st, as_of=AS_OF)
    result = job.run(io.StringIO(EDGE), "customers.csv")
    counts = st.counts().states
    st.close()
    assert result.errors and "segment sleep30: a message needs" in result.errors[0]
    assert "the limit is 6 (line 2:" in result.errors[0]
    assert sum(counts.values()) == 0


def test_golden_dry_run_of_a_generated_base(cfg):
    base = io.StringIO()
    write(base, 400, AS_OF, seed=3, delimiter=";")
    result = run(cfg, base.getvalue(), dry_run=True, store=False)
    text = report.render(result, dry_run=True) + "\n"
    if not GOLDEN.exists():
        GOLDEN.write_text(text, encoding="utf-8")
        pytest.fail(f"wrote {GOLDEN}: review it and commit it")
    assert text == GOLDEN.read_text(encoding="utf-8")


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "reactivation.toml"
GOLDEN_EXAMPLE = Path(__file__).parent / "golden" / "dry_run_example.txt"

# the example rules' columns, a language column as CRMs fill it, dates in every format
LANGUAGES = (
    "customer_id,phone,first_name,last_purchase,last_response,signup,sms_consent,"
    "bonus_points,language\n"
    "e1,+79161000101,Anna,2026-10-09,,2025-01-01,1,10,en\n"  # English, Latin: GSM
    "e2,+79161000102,,09.10.2026,,2025-01-01,да,10,EN-gb\n"  # no name: no salutation
    "e3,+79161000103,Ольга,09/10/2026,,2025-01-01,yes,10,en_US\n"  # Cyrillic name: UCS2
    "e4,+79161000104,Иван,2026-10-09T10:00:00,,2025-01-01,1,10,ru-RU\n"
    "e5,+79161000105,Ivan,2026-10-09 10:00,,2025-01-01,1,10,de\n"  # no German text: ru
    "e6,+79161000106,Bad,31.02.2026,,2025-01-01,1,10,en\n"  # no such day
    "e7,+79161000107,Bad,2026-10-09,,2025-01-01,maybe,10,en\n"  # not a consent value
)


def test_each_customer_gets_the_text_in_their_language(capped):
    cfg = capped
    st = open_store(cfg)
    try:
        job = Job(cfg, rules.load(EXAMPLE), st, as_of=AS_OF)
        result = job.run(io.StringIO(LANGUAGES), "langs.csv")
        texts = {m.ext_id: m.text for m in st.messages()}
    finally:
        st.close()
    assert result.excluded == {"bad_row": 2}
    assert result.bad_lines == [
        "langs.csv:7: last_purchase: '31.02.2026': expected a date such as 2026-11-01, "
        "01.11.2026 or 01/11/2026",
        "langs.csv:8: sms_consent: 'maybe': expected yes/no, да/нет, da/nu, true/false or 1/0",
    ]
    link = "https://shop.example/r?utm_source=sms&utm_campaign=reactivation&utm_content=sleep30"
    assert texts == {
        "e1": f"Anna, how are we doing? 3 questions, 1 minute: {link}",
        "e2": f"How are we doing? 3 questions, 1 minute: {link}",
        "e3": f"Ольга, how are we doing? 3 questions, 1 minute: {link}",
        "e4": f"Иван, как вам у нас? 3 вопроса, 1 минута: {link}",
        "e5": f"Ivan, как вам у нас? 3 вопроса, 1 минута: {link}",
    }
    sleep30 = by_name(result)["sleep30"]
    assert sleep30.messages == {"GSM": 2, "UCS2": 3}
    assert sleep30.parts == {"GSM": 2, "UCS2": 6}


@pytest.mark.parametrize(
    ("raw", "dmy", "expected"),
    [
        ("2026-11-01", True, date(2026, 11, 1)),
        ("01.11.2026", True, date(2026, 11, 1)),
        ("01/11/2026", True, date(2026, 11, 1)),
        ("01/11/2026", False, date(2026, 1, 11)),
        ("1.2.2026", True, date(2026, 2, 1)),
        ("2026-11-01T10:00:00", True, date(2026, 11, 1)),
        ("2026-11-01T10:00:00+03:00", True, date(2026, 11, 1)),
        ("2026-11-01 10:00", True, date(2026, 11, 1)),
        ("01.11.2026 10:00", True, date(2026, 11, 1)),
    ],
)
def test_dates_in_the_formats_crm_exports_use(raw, dmy, expected):
    assert parse_date(raw, dmy, "signup") == expected.toordinal()


@pytest.mark.parametrize("raw", ["2026-13-01", "31.02.2026", "yesterday", "11/2026", "01.11.26"])
def test_a_bad_date_names_the_field(raw):
    with pytest.raises(BadRow, match=f"signup: '{raw}': expected a date"):
        parse_date(raw, True, "signup")


def test_derived_values():
    header = ["phone", "purchase", "response", "signup"]
    columns = rules.Columns(last_purchase="purchase", last_response="response", signup="signup")
    reader = Reader(columns, header, AS_OF, "x.csv")
    c = reader.customer(2, ["+79161234567", "2026-10-24", "", "2025-11-23"])
    assert c.values["days_since_purchase"] == 30
    assert c.values["days_since_response"] is None
    assert c.values["never_responded"] is True
    assert c.values["days_since_activity"] == 30
    assert c.values["months_active"] == 11.0  # 335 days from signup to the last purchase
    assert c.values["consent"] is True  # no consent column: consent is assumed


def test_the_national_fast_path_agrees_with_the_validator(cfg):
    from engine import ingest

    validator = ingest.Validator(cfg)
    fast = validator.number

    def answer(number, raw):
        try:
            return number(raw)
        except ingest.BadField as exc:
            return exc.reason

    base = io.StringIO()
    write(base, 3000, AS_OF, seed=5)
    phones = [line.split(",")[1] for line in base.getvalue().splitlines()[1:]]
    phones += ["8 10 49 30 1234567", "8 800 555-35-35", "89161234567", "8", "8 916", "8 (495) 1"]
    assert sum(p.startswith("8") for p in phones) > 300
    assert [answer(fast, p) for p in phones] == [answer(validator._parse_number, p) for p in phones]
    assert fast("8 10 49 30 1234567") == "+49301234567"  # 810: Russia's international prefix


def test_the_sample_base_is_deterministic_and_has_every_edge_case():
    one, two = io.StringIO(), io.StringIO()
    write(one, 2000, AS_OF, seed=7, delimiter=";")
    write(two, 2000, AS_OF, seed=7, delimiter=";")
    assert one.getvalue() == two.getvalue()
    rows = [line.split(";") for line in one.getvalue().splitlines()]
    header, rows = rows[0], rows[1:]
    assert header[:2] == ["customer_id", "phone"] and header[-1] == "language"
    phones = [r[1] for r in rows]
    assert len(set(phones)) < len(phones)  # duplicates
    assert any(p.startswith("8 9") for p in phones)  # national
    assert any(p.startswith("+7 (9") for p in phones)  # formatted
    assert any(r[2] == "" for r in rows)  # missing names
    assert any(r[2] and r[2][0] in "АИОМДЕСН" for r in rows)  # Cyrillic names
    assert any(r[2].isascii() and r[2] for r in rows)  # Latin names
    assert any(r[6] == "0" for r in rows)  # consent withheld
    dates = " ".join(r[3] for r in rows)
    assert "." in dates and "/" in dates and "T" in dates and "-" in dates
    assert {"ru", "en", "EN", "en_GB", ""} <= {r[-1] for r in rows}


def test_golden_dry_run_of_the_example_rules(capped):
    base = io.StringIO()
    write(base, 300, AS_OF, seed=11)
    base.seek(0)
    ten = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Europe/Moscow")).timestamp()
    job = Job(capped, rules.load(EXAMPLE), None, as_of=AS_OF, now=ten, dry_run=True)
    result = job.run(base, "customers.csv")
    text = report.render(result, dry_run=True) + "\n"
    if not GOLDEN_EXAMPLE.exists():
        GOLDEN_EXAMPLE.write_text(text, encoding="utf-8")
        pytest.fail(f"wrote {GOLDEN_EXAMPLE}: review it and commit it")
    assert text == GOLDEN_EXAMPLE.read_text(encoding="utf-8")
