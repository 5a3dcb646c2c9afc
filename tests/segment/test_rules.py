"""The rules file: parsed and checked up front; conditions are data, never eval'd."""

import pytest

from engine.segment.rules import RulesError, parse

HEAD = (
    '[campaign]\nname = "c"\nlink = "https://x.example/r"\n'
    '[columns]\nname = "n"\nconsent = "assumed"\n'
)


def rules(segments: str, head: str = HEAD):
    return parse(head + segments)


def seg(when: str, template: str = "hi {name}", extra: str = 'fallbacks = { name = "you" }'):
    return f'[[segments]]\nname = "s"\nwhen = {when}\ntemplate = "{template}"\n{extra}\n'


@pytest.mark.parametrize(
    ("when", "values", "expected"),
    [
        ("{ days_since_purchase = { ge = 30, lt = 60 } }", {"days_since_purchase": 30}, True),
        ("{ days_since_purchase = { ge = 30, lt = 60 } }", {"days_since_purchase": 60}, False),
        ("{ days_since_purchase = { ge = 30 } }", {"days_since_purchase": None}, False),
        ("{ never_responded = true }", {"never_responded": True}, True),
        ("{ never_responded = true, consent = true }", {"never_responded": True}, False),
        (
            "{ any = [{ days_since_activity = { gt = 180 } }, { never_purchased = true }] }",
            {"days_since_activity": 10, "never_purchased": True},
            True,
        ),
        ("{ not = { never_responded = true } }", {"never_responded": False}, True),
        ("{ days_since_response = { missing = true } }", {}, True),
        ("{ months_active = { in = [3, 4, 5] } }", {"months_active": 4}, True),
        ("{ months_active = { ne = 4 } }", {"months_active": 4}, False),
        ("{}", {}, True),
    ],
)
def test_conditions(when, values, expected):
    (compiled,) = rules(seg(when)).segments
    assert compiled.test(values) is expected


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            seg("{ days_since_purchse = 3 }"),
            r"segments\[0\] \(s\): when.days_since_purchse: "
            r"unknown value 'days_since_purchse'",
        ),
        (
            seg("{ days_since_purchase = { about = 3 } }"),
            r"when.days_since_purchase.about: "
            "unknown comparison",
        ),
        (seg('{ days_since_purchase = { ge = "30" } }'), "expected a number, got '30'"),
        (seg("{ any = [] }"), "when.any: expected a non-empty list"),
        (seg("{}", "hi {nmae}"), r"template: \{nmae\}: unknown placeholder"),
        (
            seg("{}", "hi {name}", ""),
            r"\{name\} has no fallback: add template_no_name = \"...\" \(the text for "
            r"customers without a name\), fallbacks.name, or on_missing",
        ),
        (seg("{}", "hi {points}", ""), r"template: \{points\}: unknown placeholder"),
        (
            seg("{}", "hi {name}", 'template_no_name = "hi {name}"'),
            r"template_no_name: \{name\}: this is the text for customers without a name",
        ),
        (seg("{}", "hi", 'expires = "tomorrow"'), r"expires: 'tomorrow': expected ISO 8601"),
        (seg("{}", "hi", 'expires = "2026-12-01T00:00"'), "needs a UTC offset"),
        (seg("{}", "hi", 'not_before = "+3w"'), r"not_before: '\+3w': expected ISO 8601"),
        (seg("{}", "hi {name!r}"), "only plain"),
        (seg("{}", "50% off {", 'fallbacks = { name = "x" }'), "literal braces"),
        (seg("{}") + seg("{}"), "duplicate segment name"),
        ('[[segments]]\nname = "s"\n', "template: required"),
        (
            '[[segments]]\nname = "s"\ntemplate = "x"\ncolour = "red"\n',
            r"segments\[0\].colour: unknown key",
        ),
        ("", "no \\[\\[segments\\]\\]"),
    ],
)
def test_errors_name_the_segment_and_the_problem(text, error):
    with pytest.raises(RulesError, match=error):
        rules(text)


def test_a_link_gets_the_segments_utm_tags():
    (s,) = rules(seg("{}", "go {link}")).segments
    assert s.link == "https://x.example/r?utm_source=sms&utm_campaign=c&utm_content=s"
    assert s.placeholders == ("link",)


def test_not_toml_is_a_clear_error():
    with pytest.raises(RulesError, match=r"rules\.toml: not valid TOML"):
        parse("[campaign\n")


LANG_HEAD = HEAD.replace(
    'link = "https://x.example/r"\n', 'link = "https://x.example/r"\nlanguage = "ru"\n'
)


def test_texts_by_language_fall_back_to_the_campaigns_language():
    text = (
        '[[segments]]\nname = "s"\n'
        'template = { ru = "Привет, {name}", en = "Hi {name}" }\n'
        'fallbacks = { name = { ru = "друг", en = "friend" } }\n'
    )
    (s,) = rules(text, LANG_HEAD).segments
    assert s.variant("en").template == "Hi {name}"
    assert s.variant("en").fallbacks == {"name": "friend"}
    assert s.variant("ru").template == "Привет, {name}"
    assert s.variant("de").template == "Привет, {name}"  # no German text: the default
    assert s.variant("").fallbacks == {"name": "друг"}
    assert s.template == "Привет, {name}"


@pytest.mark.parametrize(
    ("head", "segment", "error"),
    [
        (
            HEAD,
            'template = { en = "hi" }',
            "template: texts by language need \\[campaign\\] language",
        ),
        (LANG_HEAD, 'template = { en = "hi" }', "template: no text for 'ru', the default"),
        (LANG_HEAD, 'template = { ru = "x", English = "hi" }', "template.English: expected a"),
        (LANG_HEAD, "template = {}", "template: an empty table"),
        (LANG_HEAD, 'template = { ru = "x", en = "" }', "template.en: empty"),
        (
            LANG_HEAD,
            'template = { ru = "x {name}", en = "hi {name}" }\n'
            'fallbacks = { name = { ru = "друг" } }',
            r"fallbacks.name: no text for 'en' \(template.en uses \{name\}\)",
        ),
        (
            LANG_HEAD,
            'template = { ru = "x", en = "hi {nmae}" }',
            r"template.en: \{nmae\}: unknown placeholder",
        ),
        (
            HEAD,
            'template = "hi {name}"\nfallbacks = { name = { en = "you" } }',
            "fallbacks.name: texts by language need",
        ),
    ],
)
def test_language_errors_name_the_segment_and_the_text(head, segment, error):
    with pytest.raises(RulesError, match=r"segments\[0\] \(s\): " + error):
        rules(f'[[segments]]\nname = "s"\n{segment}\n', head)


def test_the_campaign_name_can_be_replaced_and_goes_into_batches_and_links():
    from datetime import date

    r = parse(HEAD + seg("{}", "go {link}"), campaign="winter-2026")
    assert r.batch_id("s", date(2026, 11, 23)) == "winter-2026-s-20261123"
    assert "utm_campaign=winter-2026&utm_content=s" in r.segments[0].link
    with pytest.raises(RulesError, match="--campaign: 'a b': letters, digits"):
        parse(HEAD + seg("{}"), campaign="a b")
    with pytest.raises(RulesError, match=r"\[campaign\] name: 'a/b'"):
        parse(HEAD.replace('"c"', '"a/b"') + seg("{}"))


def test_the_example_rules_file_is_the_classic_flow():
    from pathlib import Path

    from engine.segment.rules import load

    example = Path(__file__).resolve().parents[2] / "examples" / "reactivation.toml"
    r = load(example)
    names = [s.name for s in r.segments]
    assert names == ["flow_end", "dead", "sleep90", "sleep60", "sleep30", "never"]
    end, dead, sleep90, sleep60, sleep30, never = r.segments
    assert end.action == "list" and end.suppress
    nothing = {f"{v}_{s}": False for s in names for v in ("sent", "clicked", "replied")}
    gone = nothing | {"sent_sleep90": True, "days_since_sent_sleep90": 14}
    assert end.test(gone) and not end.test(gone | {"clicked_sleep90": True})
    assert not end.test(gone | {"days_since_sent_sleep90": 13})
    assert dead.action == "list"
    assert dead.test({"days_since_activity": 181})
    assert not dead.test({"days_since_activity": 180})
    assert sleep90.test(nothing | {"days_since_activity": 120})
    assert not sleep90.test(nothing | {"days_since_activity": 120, "clicked_sleep60": True})
    assert sleep60.test(nothing | {"days_since_activity": 75})
    assert not sleep60.test(nothing | {"days_since_activity": 75, "replied_sleep30": True})
    assert sleep30.test({"days_since_activity": 30})
    assert not sleep30.test({"days_since_activity": 29})
    assert never.test({"never_responded": True, "days_since_signup": 40})
    assert set(sleep30.variants) == {"", "en"}
    assert set(sleep30.no_name) == {"", "en"}
    assert sleep30.variant("en", named=False).template.startswith("How are we doing?")
    assert sleep30.variant("ru", named=False).template.startswith("Как вам у нас?")
    assert sleep30.variant("de", named=False).template.startswith("Как вам у нас?")
    assert "name" not in sleep30.variant("en").fallbacks  # no "Dear customer"
    assert sleep30.cap == (1, 30 * 86400)
    assert (sleep30.expires, sleep90.expires, never.expires) == ("+3d", "+7d", "")


def test_a_rules_file_must_say_where_consent_is_or_that_it_is_assumed():
    head = HEAD.replace('consent = "assumed"\n', "")
    with pytest.raises(RulesError, match=r'\[columns\] consent: required: .*consent = "assumed"'):
        rules(seg("{}"), head)
    (s,) = rules(seg("{}"), head + 'consent = "sms_consent"\n').segments
    assert s.name == "s"


def test_the_no_name_text_stands_in_for_the_name_s_fallback():
    text = seg("{}", "{name}, hi", 'template_no_name = "Hi"')
    (s,) = rules(text).segments
    assert s.variant("", named=False).template == "Hi"
    assert s.variant("", named=True).template == "{name}, hi"


def test_no_name_texts_by_language():
    text = (
        '[[segments]]\nname = "s"\n'
        'template = { ru = "{name}, привет", en = "Hi {name}" }\n'
        'template_no_name = { ru = "Привет", en = "Hi" }\n'
    )
    (s,) = rules(text, LANG_HEAD).segments
    assert s.variant("en", named=False).template == "Hi"
    assert s.variant("ru", named=False).template == "Привет"
    with pytest.raises(RulesError, match=r"\{name\} has no fallback"):  # no English text
        rules(text.replace(', en = "Hi" }', " }"), LANG_HEAD)
    with pytest.raises(RulesError, match="template_no_name: one text, as template is"):
        rules(seg("{}", "{name}", 'template_no_name = { ru = "x" }'), LANG_HEAD)
    with pytest.raises(RulesError, match="template_no_name: a text per language"):
        rules(text.replace('{ ru = "Привет", en = "Hi" }', '"Hi"'), LANG_HEAD)
