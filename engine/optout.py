"""Is an inbound SMS an opt-out? Keywords and phrases, matched on normalised words.

Both the message and the configured terms are reduced to the same form: Unicode
compatibility forms folded, lower case, accents dropped ("dezabonează" reads
as "dezaboneaza"), and Cyrillic letters that look like Latin ones read as those
Latin letters (and 0 as o), so "СТОП" typed with a Latin C, or "STOP" with a
Cyrillic О, still match. The message is split into words (a hyphen or an
apostrophe inside a word keeps it whole: "стоп-кран" is one word, not "стоп").

The boundary, chosen to honour what people write when they mean it and to not
unsubscribe anyone who did not:

- an opt-out is a message whose words, once the polite ones are set aside
  ("please", "пожалуйста", "спасибо", "vă rog", "sms"...), are exactly one
  keyword (repeated or not: "STOP STOP") or exactly one phrase ("STOP ALL",
  "отпишите меня");
- anything else is not, even if it contains a keyword: "don't stop sending me
  offers", "стоп-кран", "when does the sale stop?". Such a message is still
  recorded, with a note naming the keyword it mentions, for an operator to
  read (``volley numbers export --mo``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import msgspec

# Cyrillic (and one digit) look-alikes of Latin letters, after lower-casing:
# each pair looks alike in upper or lower case on a phone's keyboard.
_LOOKALIKES = str.maketrans(
    {
        "а": "a",
        "в": "b",
        "е": "e",
        "к": "k",
        "м": "m",
        "н": "h",
        "о": "o",
        "р": "p",
        "с": "c",
        "т": "t",
        "у": "y",
        "х": "x",
        "і": "i",
        "ј": "j",
        "ѕ": "s",
        "0": "o",
    }
)
_WORD = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*")
MAX_WORDS = 12  # a longer message is a conversation, not an opt-out

KEYWORDS = [
    "STOP",
    "СТОП",
    "ОТПИСАТЬСЯ",
    "ОТПИСКА",
    "UNSUBSCRIBE",
    "STOPALL",
    "NU",
    "DEZABONARE",
    "DEZABONEAZĂ",
]
PHRASES = [
    "STOP ALL",
    "ОТПИШИТЕ МЕНЯ",
    "ОТПИСАТЬСЯ ОТ РАССЫЛКИ",
    "НЕ ПРИСЫЛАЙТЕ",
    "НЕ ПИШИТЕ МНЕ",
    "UNSUBSCRIBE ME",
    "OPT OUT",
    "DEZABONARE SMS",
    "NU MAI TRIMITETI",
]
POLITE = [
    "please",
    "pls",
    "plz",
    "thanks",
    "thank you",
    "thx",
    "sms",
    "пожалуйста",
    "плиз",
    "спасибо",
    "смс",
    "vă rog",
    "mulțumesc",
    "mersi",
]


class Verdict(msgspec.Struct, frozen=True):
    stop: bool
    why: str = ""  # the rule that matched ("keyword STOP"), or a note for an operator


NOT_STOP = Verdict(False)


def words(text: str) -> list[str]:
    """The text's words in their matching form."""
    return [_fold(w) for w in _WORD.findall(text)]


def _fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return plain.translate(_LOOKALIKES).replace("’", "'")


class OptOutRules:
    """Built once from ``[stop]``; ``check`` is pure."""

    def __init__(
        self,
        keywords: Iterable[str] = KEYWORDS,
        phrases: Iterable[str] = PHRASES,
        polite: Iterable[str] = POLITE,
    ) -> None:
        self._terms: dict[tuple[str, ...], str] = {}
        self._keywords: dict[str, str] = {}
        for rule, items in (("phrase", phrases), ("keyword", keywords)):
            for item in items:
                key = tuple(words(item))
                if not key:
                    continue
                self._terms[key] = f"{'keyword' if len(key) == 1 else rule} {item.strip()}"
                if len(key) == 1:
                    self._keywords[key[0]] = item.strip()
        self._polite = {w for item in polite for w in words(item)}

    def check(self, text: str) -> Verdict:
        found = words(text)
        core = [w for w in found if w not in self._polite]
        if core and len(found) <= MAX_WORDS:
            rule = self._terms.get(tuple(core))
            if rule is None and len(set(core)) == 1:
                rule = self._terms.get((core[0],))
            if rule is not None:
                return Verdict(True, rule)
        mentioned = next((self._keywords[w] for w in core if w in self._keywords), None)
        if mentioned is not None:
            return Verdict(False, f"not an opt-out: {mentioned} among other words")
        return NOT_STOP
