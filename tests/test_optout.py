"""Opt-out matching: what is honoured, what is not, and why."""

import pytest

from engine import config
from engine.optout import OptOutRules, words


@pytest.fixture(scope="module")
def rules():
    return OptOutRules()


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("STOP", "keyword STOP"),
        ("stop", "keyword STOP"),
        ("  Stop  ", "keyword STOP"),
        ("Stop.", "keyword STOP"),
        ("STOP!!!", "keyword STOP"),
        ("«стоп»", "keyword СТОП"),
        ("стоп.", "keyword СТОП"),
        ("СТОП", "keyword СТОП"),
        ("Стоп, пожалуйста", "keyword СТОП"),
        ("Stop please", "keyword STOP"),
        ("please stop, thank you", "keyword STOP"),
        ("STOP STOP", "keyword STOP"),
        ("ОТПИСАТЬСЯ", "keyword ОТПИСАТЬСЯ"),
        ("отписаться!", "keyword ОТПИСАТЬСЯ"),
        ("UNSUBSCRIBE", "keyword UNSUBSCRIBE"),
        ("unsubscribe me", "phrase UNSUBSCRIBE ME"),
        ("STOP ALL", "phrase STOP ALL"),
        ("stop all", "phrase STOP ALL"),
        ("NU", "keyword NU"),
        ("Nu.", "keyword NU"),
        ("DEZABONARE", "keyword DEZABONARE"),
        ("dezabonează", "keyword DEZABONEAZĂ"),
        ("Dezabonare, vă rog", "keyword DEZABONARE"),
        ("Отпишите меня", "phrase ОТПИШИТЕ МЕНЯ"),
        ("STOP 🙏", "keyword STOP"),
        ("ＳＴＯＰ", "keyword STOP"),  # full-width letters
        ("ST0P", "keyword STOP"),  # a zero for the O
    ],
)
def test_opt_outs_are_honoured_with_their_rule(rules, text, rule):
    verdict = rules.check(text)
    assert verdict.stop, text
    assert verdict.why == rule


@pytest.mark.parametrize(
    "text",
    [
        "СТОП",  # all Cyrillic
        "CTOП",  # Latin C, T, O and a Cyrillic П
        "СТOП",  # Cyrillic С, Т, П and a Latin O
        "STОP",  # Latin, with a Cyrillic О
        "ЅТОР",  # all Cyrillic look-alikes (dze, te, o, er)
    ],
)
def test_latin_and_cyrillic_look_alikes_match(rules, text):
    assert rules.check(text).stop, text


@pytest.mark.parametrize(
    ("text", "note"),
    [
        ("don't stop sending me offers", "not an opt-out: STOP among other words"),
        ("Стоп-кран", ""),
        ("стоп - кран", "not an opt-out: СТОП among other words"),
        ("When does the sale stop?", "not an opt-out: STOP among other words"),
        ("Nu am primit codul", "not an opt-out: NU among other words"),
        ("Ну", ""),  # Russian "well", not Romanian "nu"
        ("Stopwatch", ""),
        ("Да", ""),
        ("", ""),
        ("!!!", ""),
        ("please", ""),
        ("stop " * 20, "not an opt-out: STOP among other words"),  # a conversation's length
    ],
)
def test_messages_that_merely_mention_a_keyword_are_not_opt_outs(rules, text, note):
    verdict = rules.check(text)
    assert not verdict.stop, text
    assert verdict.why == note


def test_words_keep_hyphens_and_apostrophes_inside():
    assert words("Don't, стоп-кран!") == ["don't", "ctoп-kpah"]


def test_the_configuration_replaces_each_list():
    cfg = config.parse(
        '[stop]\nkeywords = ["HALT"]\nphrases = ["leave me alone"]\npolite = ["kindly"]\n'
    )
    rules = OptOutRules(cfg.stop.keywords, cfg.stop.phrases, cfg.stop.polite)
    assert rules.check("halt, kindly").why == "keyword HALT"
    assert rules.check("Leave me alone!").why == "phrase leave me alone"
    assert not rules.check("STOP").stop
    assert not rules.check("halt please").stop  # "please" is no longer polite here


def test_the_old_keywords_only_config_still_works():
    cfg = config.parse('[stop]\nkeywords = ["STOP", "СТОП", "ОТПИСАТЬСЯ", "UNSUBSCRIBE"]\n')
    rules = OptOutRules(cfg.stop.keywords, cfg.stop.phrases, cfg.stop.polite)
    assert rules.check("стоп").why == "keyword СТОП"
    assert rules.check("STOP ALL").why == "phrase STOP ALL"  # the default phrases stay
