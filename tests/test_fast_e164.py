"""The fast E.164 path agrees with phonenumbers' parser wherever it answers."""

import random

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import config, e164, ingest

VALIDATOR = ingest.Validator(config.parse(b""))


def slow(text: str) -> str | None:
    try:
        return VALIDATOR._parse_number(text)
    except ingest.BadField:
        return None


def agrees(text: str) -> bool:
    fast = e164.fast_e164(text)
    return fast is None or fast == slow(text)


def test_every_regions_example_numbers_and_their_neighbours():
    rng = random.Random(7)
    answered = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            digits = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)[1:]
            for _ in range(5):
                d = list(digits)
                d[rng.randrange(len(d))] = str(rng.randrange(10))
                for text in ("+" + "".join(d), "".join(d), "+" + " ".join(d)):
                    assert agrees(text), text
                    answered += e164.fast_e164(text) is not None
    assert answered > 1000  # the fast path does answer most plain numbers


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="+0123456789 -()8", min_size=1, max_size=18))
def test_any_digit_string(text):
    assert agrees(text)


@pytest.mark.parametrize("region", ["RU", "GB", "DE", "FR", "US", "RO", "UA", "KZ", "IT", "AR"])
def test_national_numbers_take_the_fast_path_only_where_it_agrees(region):
    cfg = config.parse(f'[defaults]\nregion = "{region}"\n'.encode())
    validator = ingest.Validator(cfg)
    national = e164.National(region)
    rng = random.Random(region)

    def answer(number, text):
        try:
            return number(text)
        except ingest.BadField:
            return None

    for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
        example = phonenumbers.example_number_for_type(region, kind)
        if example is None:
            continue
        written = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
        for _ in range(30):
            chars = list(written)
            digit_at = [i for i, c in enumerate(chars) if c.isdigit()]
            chars[rng.choice(digit_at[1:])] = str(rng.randrange(10))
            text = "".join(chars)
            for form in (text, "".join(c for c in text if c.isdigit())):
                fast = national(form)
                assert fast is None or fast == answer(validator._parse_number, form), form
                assert answer(validator.number, form) == answer(validator._parse_number, form)
