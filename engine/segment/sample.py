"""A generated customer base (no real data): for the demo, the tests and the benchmark.

    python -m engine.segment.sample N [--as-of 2026-11-23] [--seed 1] [--delimiter ';'] [--bom]

Deterministic for a seed. Customers are spread over active, sleeping 30/60/90
days, never responded and dead (no activity for over 180 days), with the edge
cases CRM exports have: national and formatted numbers, a few invalid ones,
duplicate phones, missing names, consent withheld, Cyrillic and Latin names,
dates written in several formats, a language column (ru, en, en_GB, blank).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from typing import TextIO

HEADER = [
    "customer_id",
    "phone",
    "first_name",
    "last_purchase",
    "last_response",
    "signup",
    "sms_consent",
    "bonus_points",
    "language",
]
NAMES = ["Анна", "Мария", "Ольга", "Иван", "Дмитрий", "Елена", "Сергей", "Наталья",
         "Anna", "Maria", "Ivan", "Elena", "Alex", "Olga"]  # fmt: skip
# (share, days since the last activity: low, high)
PROFILES = [
    (0.40, 0, 29),  # active
    (0.12, 30, 59),  # sleeping 30
    (0.10, 60, 89),  # sleeping 60
    (0.10, 90, 180),  # sleeping 90
    (0.13, 181, 720),  # dead
]
NEVER_RESPONDED = 0.15
# the language column as CRMs fill it: mostly Russian, some English, some blank
LANGUAGES = [(0.70, "ru"), (0.05, "ru-RU"), (0.12, "en"), (0.03, "EN"), (0.02, "en_GB")]


def customers(n: int, as_of: date, seed: int = 1) -> Iterator[list[str]]:
    rng = random.Random(seed)
    languages = random.Random(seed + 1_000_003)  # its own stream: the rest stays as it was
    phones: list[str] = []
    for i in range(n):
        phone = _phone(rng, i)
        if phones and rng.random() < 0.01:
            phone = rng.choice(phones[-1000:])  # the same customer twice
        phones.append(phone)
        signup = as_of - timedelta(days=rng.randint(200, 1500))
        r = rng.random()
        if r < NEVER_RESPONDED:
            last_purchase = "" if rng.random() < 0.5 else _date(rng, as_of, rng.randint(0, 200))
            last_response = ""
            signup = as_of - timedelta(days=rng.randint(30, 400))
        else:
            low, high = _profile(rng)
            days = rng.randint(low, high)
            last_purchase = _date(rng, as_of, days)
            last_response = _date(rng, as_of, days + rng.randint(0, 30))
        yield [
            f"c{i:07d}",
            phone,
            "" if rng.random() < 0.08 else rng.choice(NAMES),
            last_purchase,
            last_response,
            signup.isoformat(),
            "0" if rng.random() < 0.05 else rng.choice(["1", "yes", "true"]),
            str(rng.randint(0, 5000)) if rng.random() < 0.9 else "",
            _language(languages),
        ]


def _profile(rng: random.Random) -> tuple[int, int]:
    r = rng.random() * sum(p[0] for p in PROFILES)
    for share, low, high in PROFILES:
        r -= share
        if r <= 0:
            return low, high
    return PROFILES[-1][1:]


def _language(rng: random.Random) -> str:
    r = rng.random()
    for share, code in LANGUAGES:
        r -= share
        if r < 0:
            return code
    return ""


def _phone(rng: random.Random, i: int) -> str:
    subscriber = f"{rng.randrange(10**7):07d}"
    code = rng.choice(["916", "926", "903", "905", "915", "925", "999", "985"])
    form = rng.random()
    if form < 0.002:
        return f"12{subscriber[:3]}"  # not a phone number
    if form < 0.15:
        return f"8 {code} {subscriber[:3]}-{subscriber[3:5]}-{subscriber[5:]}"
    if form < 0.25:
        return f"+7 ({code}) {subscriber[:3]}-{subscriber[3:5]}-{subscriber[5:]}"
    return f"+7{code}{subscriber}"


def _date(rng: random.Random, as_of: date, days_ago: int) -> str:
    d = as_of - timedelta(days=days_ago)
    form = rng.random()
    if form < 0.6:
        return d.isoformat()
    if form < 0.8:
        return f"{d:%d.%m.%Y}"
    if form < 0.9:
        return f"{d:%d/%m/%Y}"
    return f"{d.isoformat()}T{rng.randint(8, 21):02d}:{rng.randint(0, 59):02d}:00"


def write(out: TextIO, n: int, as_of: date, seed: int = 1, delimiter: str = ",") -> None:
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(customers(n, as_of, seed))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="engine.segment.sample", description=__doc__.split("\n")[0])
    ap.add_argument("n", type=int)
    ap.add_argument("--as-of", type=date.fromisoformat, default=date.today())
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--delimiter", default=",")
    ap.add_argument("--bom", action="store_true")
    args = ap.parse_args(argv)
    out = sys.stdout
    if isinstance(out, io.TextIOWrapper):
        out.reconfigure(encoding="utf-8")  # whatever the locale says
    try:
        if args.bom:
            out.write("\ufeff")
        write(out, args.n, args.as_of, args.seed, args.delimiter)
        out.flush()
    except BrokenPipeError:  # `| head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
