"""The rules file: parsed and checked up front; conditions are data, never eval'd."""

import pytest

from engine.segment.rules import RulesError, parse

HEAD = '[campaign]\nname = "c"\nlink = "https://x.example/r"\n[columns]\nname = "n"\n'


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
        (seg("{}", "hi {name}", ""), r"\{name\} has no fallback: add fallbacks.name"),
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
