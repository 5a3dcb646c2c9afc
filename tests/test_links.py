"""Short links: finding URLs in texts, codes, preview robots, tracking at ingest."""

import collections
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import config, ingest, links
from engine.smpp import encoding

BASE = "https://s.example/"


def spans(text):
    return [text[a:b] for a, b in links.urls(text)]


def test_urls_as_people_write_them_in_an_sms():
    assert spans("Скидка -20%: https://shop.example/r?utm_source=sms&x=1. Ждём!") == [
        "https://shop.example/r?utm_source=sms&x=1"
    ]
    assert spans("(see http://a.example/x), or «https://b.example/y»!") == [
        "http://a.example/x",
        "https://b.example/y",
    ]
    assert spans("wiki https://en.wikipedia.org/wiki/Foo_(bar) ok") == [
        "https://en.wikipedia.org/wiki/Foo_(bar)"
    ]
    assert spans("HTTPS://SHOP.EXAMPLE/A…") == ["HTTPS://SHOP.EXAMPLE/A"]
    assert spans("no link: shop.example, ftp://x.example, https:// alone") == []


def test_codes_are_random_base62_of_the_length_asked():
    codes = [links.new_code(7) for _ in range(2000)]
    assert all(len(c) == 7 and links.is_code(c) for c in codes)
    assert len(set(codes)) == len(codes)
    # neighbours say nothing of each other: every character is used, roughly evenly
    counts = collections.Counter("".join(codes))
    assert len(counts) == 62 and max(counts.values()) < 3 * min(counts.values())
    for bad in ("", "abc", "a" * 33, "abc-def", "../etc", "абвгдеж", "abc def"):
        assert not links.is_code(bad)


def test_track_gives_each_url_a_code_and_keeps_the_rest():
    text, found = links.track(
        f"A https://x.example/a?utm_source=sms, again https://x.example/a?utm_source=sms "
        f"and {BASE}Already1 and http://y.example/",
        BASE,
        7,
    )
    assert [link.url for link in found] == [
        "https://x.example/a?utm_source=sms",
        "http://y.example/",
    ]
    a, y = (link.code for link in found)
    assert text == f"A {BASE}{a}, again {BASE}{a} and {BASE}Already1 and {BASE}{y}"
    assert (
        links.shape(text, found)
        == f"A {BASE}0000000, again {BASE}0000000 and {BASE}Already1 and {BASE}0000000"
    )
    assert links.track("no link here", BASE, 7) == ("no link here", [])


@pytest.mark.parametrize(
    "agent",
    [
        "TelegramBot (like TwitterBot)",
        "WhatsApp/2.23.20.0",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Mozilla/5.0 (Macintosh) AppleWebKit/601.2.4 Facebot Twitterbot/1.0",  # iMessage
        "Twitterbot/1.0",
        "Viber/13.3 CFNetwork/1220.1 Darwin/20.3.0",
        "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5",
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
        "LinkedInBot/1.0 (compatible; Mozilla/5.0)",
        "Mozilla/5.0 (compatible; Google-PageRenderer Google (+https://developers.google.com/+/web/snippet/))",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
        "vkShare; +http://vk.com/dev/Share",
    ],
)
def test_preview_robots_are_known(agent):
    assert links.is_preview(agent)


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/5.0 (Linux; Android 13; SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 12) YaBrowser/23.9 Mobile Safari/537.36",
        "",
    ],
)
def test_people_are_not_robots(agent):
    assert not links.is_preview(agent)


def cfg(links_section='base = "https://s.example/"'):
    return config.parse(f"[links]\n{links_section}\n".encode())


def test_ingest_tracks_marketing_urls_and_counts_parts_as_sent():
    v = ingest.Validator(cfg())
    long_url = "https://shop.example/catalogue/winter?utm_source=sms&utm_campaign=reactivation"
    text = f"Анна, скидка -20% до 30.11: {long_url}"
    assert encoding.count_parts(text)[1] == 2
    msg = v.message({"to": "+79161234567", "text": text})
    (link,) = msg.links
    assert link.url == long_url
    assert msg.text == f"Анна, скидка -20% до 30.11: {BASE}{link.code}"
    assert msg.parts == 1
    assert v.message({"to": "+79161234567", "text": text, "track": False}).links == []
    assert v.message({"to": "+79161234567", "text": text, "kind": "transactional"}).links == []
    forced = v.message({"to": "+79161234567", "text": text, "kind": "transactional", "track": True})
    assert len(forced.links) == 1
    assert v.message({"to": "+79161234567", "text": text, "track": "false"}).links == []


def test_ingest_without_links_configured_keeps_urls_and_refuses_track_true():
    v = ingest.Validator(cfg('base = ""'))
    msg = v.message({"to": "+79161234567", "text": "see https://x.example/"})
    assert msg.links == [] and msg.text == "see https://x.example/"
    with pytest.raises(ingest.BadField, match=r"true needs \[links\] base"):
        v.message({"to": "+79161234567", "text": "x", "track": True})
    for bad in ("maybe", [1], 2):
        with pytest.raises(ingest.BadField, match="expected true or false"):
            ingest.Validator(cfg()).message({"to": "+79161234567", "text": "x", "track": bad})


def test_a_bad_links_section_names_the_key():
    for doc, expected in (
        ('base = "s.example/"', "links.base: 's.example/': expected the public prefix"),
        ('base = "https://s.example"', "links.base: 'https://s.example': must end with /"),
        ('base = "https://s.example/?a=1"', "expected the public prefix"),
        ("code_length = 3", "links.code_length: expected an integer >= 5"),
        ('listen = "nowhere"', "links.listen: 'nowhere': expected HOST:PORT"),
        ('reply_window = "a week"', "links.reply_window: expected a duration"),
        ('bse = "x"', "links.bse: unknown key"),
    ):
        with pytest.raises(
            config.ConfigError, match=expected.replace("[", r"\[").replace("?", r"\?")
        ):
            cfg(doc)


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(["http://", "https://"]),
    st.text(alphabet=string.ascii_letters + string.digits + ".-", min_size=1, max_size=20),
    st.text(max_size=40) | st.text(alphabet=string.printable, max_size=40),
)
def test_a_location_is_what_quoting_gives(scheme, host, rest):
    from engine.http.links import location, quoted

    url = f"{scheme}{host}/{rest}"
    location.cache_clear()
    assert location(url) == quoted(url)
