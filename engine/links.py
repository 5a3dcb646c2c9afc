"""Tracked short links: URLs in a text become ``[links] base`` + a random code.

A code is ``code_length`` base62 characters drawn from :mod:`secrets`, so it
says nothing of its neighbours (62**7 is 3.5e12 codes: guessing one of ten
million live ones takes ~350,000 tries). Every code has the same length and
base62 characters are one GSM 7-bit septet each (and one UCS2 unit): a text's
parts do not depend on which code it got, so a code drawn again after a
collision (engine/store/campaign.py) leaves the parts as they were.

Pure functions; the redirects are engine/http/links.py, the records the store.
"""

from __future__ import annotations

import functools
import re

from engine.store.campaign import new_code
from engine.store.records import Link

MIN_CODE, MAX_CODE = 5, 32
# an http(s) URL as people write it in an SMS: up to a space or a quote; trailing
# punctuation that closes the sentence is not part of it
_URL = re.compile(r"https?://[^\s<>\"'«»]+", re.IGNORECASE)
_TRAILING = ".,;:!?…»)]}'\""
_CODE = re.compile(rf"^[0-9A-Za-z]{{{MIN_CODE},{MAX_CODE}}}$")

# User-Agents of the robots that fetch a link to show its preview (and of crawlers):
# redirected, never counted as clicks. Matched case-insensitively anywhere in the agent.
PREVIEW_AGENTS = (
    "telegrambot",
    "whatsapp",
    "slackbot",
    "slack-imgproxy",
    "facebookexternalhit",
    "facebookcatalog",
    "meta-externalagent",
    "twitterbot",
    "viber",
    "skypeuripreview",
    "discordbot",
    "linkedinbot",
    "google-pagerenderer",
    "googlebot",
    "google-inspectiontool",
    "google-read-aloud",
    "apis-google",
    "feedfetcher-google",
    "bingbot",
    "bingpreview",
    "yandexbot",
    "yandex.com/bots",
    "vkshare",
    "odklbot",
    "pinterest",
    "redditbot",
    "embedly",
    "iframely",
    "outbrain",
    "quora link preview",
    "snapchat",
    "mattermost",
    "rocket.chat",
    "zoominfobot",
    "applebot",
    "duckduckbot",
    "baiduspider",
    "mastodon",
    "bot.html",
    "preview",
    "crawler",
    "spider",
)
# iMessage previews with a desktop Safari agent joined by Facebook's and Twitter's:
# it says "facebookexternalhit/1.1 Facebot Twitterbot/1.0", matched above.
_PREVIEW = re.compile("|".join(re.escape(a) for a in PREVIEW_AGENTS))


def is_code(text: str) -> bool:
    """Whether ``text`` could be a code (base62, 5 to 32 characters): else no lookup."""
    return _CODE.match(text) is not None


@functools.lru_cache(maxsize=4096)  # agents repeat: a few phone models send most clicks
def is_preview(agent: str) -> bool:
    """Whether a User-Agent is a link-preview robot or a crawler (no User-Agent: not one)."""
    return bool(agent) and _PREVIEW.search(agent.lower()) is not None


def urls(text: str) -> list[tuple[int, int]]:
    """The (start, end) of each http(s) URL in ``text``, trailing punctuation left out."""
    out = []
    for m in _URL.finditer(text):
        start, end = m.span()
        while end > start and text[end - 1] in _TRAILING:
            opened = text.count("(", start, end)
            if text[end - 1] == ")" and opened > text.count(")", start, end - 1):
                break  # a balanced parenthesis belongs to the URL (a wiki link)
            end -= 1
        if end - start > len("https://"):
            out.append((start, end))
    return out


def track(text: str, base: str, length: int) -> tuple[str, list[Link]]:
    """``text`` with each URL (but those already under ``base``) replaced by ``base`` +
    a new code; the links, in order of appearance. A URL written twice gets one code."""
    spans = urls(text)
    if not spans:
        return text, []
    out: list[str] = []
    links: list[Link] = []
    given: dict[str, str] = {}
    at = 0
    for start, end in spans:
        url = text[start:end]
        out.append(text[at:start])
        at = end
        if url.startswith(base):
            out.append(url)
            continue
        code = given.get(url)
        if code is None:
            code = given[url] = new_code(length)
            links.append(Link(code=code, url=url))
        out.append(base + code)
    out.append(text[at:])
    return "".join(out), links


def shape(text: str, links: list[Link]) -> str:
    """The text with every code as zeros: the same parts whatever the codes (a cache key)."""
    for link in links:
        text = text.replace("/" + link.code, "/" + "0" * len(link.code))
    return text
