"""Russia's federal subjects, each with its IANA time zone, and how the numbering registry
names them.

Written by hand from the subjects' legal time (Federal Law 107-FZ "On the
calculation of time" and its later amendments, as tzdata encodes them). A
subject that spans several zones gets the zone where most of its people live:
Yakutia is Asia/Yakutsk (its eastern uluses are +10 and +11), Sakhalin is
Asia/Sakhalin (the northern Kurils share its offset). Codes are the subjects'
usual two-digit codes (those of vehicle plates and the tax service).

The registry writes one region many ways over the years ("Калининградская обл.",
"Калининградская область", "г. Москва * Московская область", "Ханты - Мансийский
- Югра АО", "г. Норильск|г.о. город Норильск|Красноярский край"); ``match`` reads
any of them: the text is split into its parts (``|``, ``*``, ``,``, `` и ``) and
each part is searched for a subject's distinctive stem. Parts naming no subject
(a district, a town) are ignored; the parts that do must agree on one zone.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class Region(NamedTuple):
    code: int
    name: str
    zone: str


# code, name, IANA zone, stems (regular expressions over the normalised text)
_SUBJECTS: list[tuple[int, str, str, str]] = [
    (1, "Республика Адыгея", "Europe/Moscow", r"адыге"),
    (2, "Республика Башкортостан", "Asia/Yekaterinburg", r"башк|абзелил|белорецк|уфа\b"),
    (3, "Республика Бурятия", "Asia/Irkutsk", r"бурят|улан-удэ"),
    (4, "Республика Алтай", "Asia/Barnaul", r"республика алтай|алтай республика|горно-алтайск"),
    (5, "Республика Дагестан", "Europe/Moscow", r"дагест|махачкал"),
    (6, "Республика Ингушетия", "Europe/Moscow", r"ингуш|назрань"),
    (7, "Кабардино-Балкарская Республика", "Europe/Moscow", r"кабардин|нальчик"),
    (8, "Республика Калмыкия", "Europe/Moscow", r"калмык|элиста"),
    (9, "Карачаево-Черкесская Республика", "Europe/Moscow", r"карачаев|черкесск"),
    (10, "Республика Карелия", "Europe/Moscow", r"карел|петрозаводск"),
    (11, "Республика Коми", "Europe/Moscow", r"\bкоми\b|сыктывкар"),
    (12, "Республика Марий Эл", "Europe/Moscow", r"марий|йошкар"),
    (13, "Республика Мордовия", "Europe/Moscow", r"мордов|саранск"),
    (14, "Республика Саха (Якутия)", "Asia/Yakutsk", r"\bсаха\b|якут"),
    (15, "Республика Северная Осетия — Алания", "Europe/Moscow", r"осети|владикавказ"),
    (16, "Республика Татарстан", "Europe/Moscow", r"татарст|казань"),
    (17, "Республика Тыва", "Asia/Krasnoyarsk", r"тыва|тува|кызыл"),
    (18, "Удмуртская Республика", "Europe/Samara", r"удмурт|ижевск"),
    (19, "Республика Хакасия", "Asia/Krasnoyarsk", r"хакас|абакан"),
    (20, "Чеченская Республика", "Europe/Moscow", r"чечен|грозн"),
    (21, "Чувашская Республика", "Europe/Moscow", r"чуваш|чебоксар"),
    (22, "Алтайский край", "Asia/Barnaul", r"алтайск|барнаул"),
    (23, "Краснодарский край", "Europe/Moscow", r"краснодар|сочи\b"),
    (24, "Красноярский край", "Asia/Krasnoyarsk", r"красноярск|норильск"),
    (25, "Приморский край", "Asia/Vladivostok", r"приморск|владивосток"),
    (26, "Ставропольский край", "Europe/Moscow", r"ставропол"),
    (27, "Хабаровский край", "Asia/Vladivostok", r"хабаровск"),
    (28, "Амурская область", "Asia/Yakutsk", r"амурск|благовещенск"),
    (29, "Архангельская область", "Europe/Moscow", r"архангельск"),
    (30, "Астраханская область", "Europe/Astrakhan", r"астрахан"),
    (31, "Белгородская область", "Europe/Moscow", r"белгород"),
    (32, "Брянская область", "Europe/Moscow", r"брянск"),
    (33, "Владимирская область", "Europe/Moscow", r"владимир"),
    (34, "Волгоградская область", "Europe/Volgograd", r"волгоград"),
    (35, "Вологодская область", "Europe/Moscow", r"вологод"),
    (36, "Воронежская область", "Europe/Moscow", r"воронеж"),
    (37, "Ивановская область", "Europe/Moscow", r"иванов"),
    (38, "Иркутская область", "Asia/Irkutsk", r"иркутск"),
    (39, "Калининградская область", "Europe/Kaliningrad", r"калининград"),
    (40, "Калужская область", "Europe/Moscow", r"калуж|калуга"),
    (41, "Камчатский край", "Asia/Kamchatka", r"камчат|коряк"),
    (42, "Кемеровская область — Кузбасс", "Asia/Novokuznetsk", r"кемеров|кузбасс"),
    (43, "Кировская область", "Europe/Kirov", r"кировск"),
    (44, "Костромская область", "Europe/Moscow", r"костром"),
    (45, "Курганская область", "Asia/Yekaterinburg", r"курган"),
    (46, "Курская область", "Europe/Moscow", r"курск"),
    (47, "Ленинградская область", "Europe/Moscow", r"ленинград"),
    (48, "Липецкая область", "Europe/Moscow", r"липец"),
    (49, "Магаданская область", "Asia/Magadan", r"магадан"),
    (50, "Московская область", "Europe/Moscow", r"московск"),
    (51, "Мурманская область", "Europe/Moscow", r"мурман"),
    (52, "Нижегородская область", "Europe/Moscow", r"нижегород|нижний новгород"),
    (53, "Новгородская область", "Europe/Moscow", r"новгородск|великий новгород"),
    (54, "Новосибирская область", "Asia/Novosibirsk", r"новосибирск"),
    (55, "Омская область", "Asia/Omsk", r"\bомск"),
    (56, "Оренбургская область", "Asia/Yekaterinburg", r"оренбург"),
    (57, "Орловская область", "Europe/Moscow", r"орловск|\bорел\b"),
    (58, "Пензенская область", "Europe/Moscow", r"пенз"),
    (59, "Пермский край", "Asia/Yekaterinburg", r"перм"),
    (60, "Псковская область", "Europe/Moscow", r"псков"),
    (61, "Ростовская область", "Europe/Moscow", r"ростовск"),
    (62, "Рязанская область", "Europe/Moscow", r"рязан"),
    (63, "Самарская область", "Europe/Samara", r"самар|тольятти"),
    (64, "Саратовская область", "Europe/Saratov", r"саратов"),
    (65, "Сахалинская область", "Asia/Sakhalin", r"сахалин|курильск"),
    (66, "Свердловская область", "Asia/Yekaterinburg", r"свердлов|екатеринбург"),
    (67, "Смоленская область", "Europe/Moscow", r"смолен"),
    (68, "Тамбовская область", "Europe/Moscow", r"тамбов"),
    (69, "Тверская область", "Europe/Moscow", r"твер"),
    (70, "Томская область", "Asia/Tomsk", r"\bтомск"),
    (71, "Тульская область", "Europe/Moscow", r"тульск|\bтула\b"),
    (72, "Тюменская область", "Asia/Yekaterinburg", r"тюмен"),
    (73, "Ульяновская область", "Europe/Ulyanovsk", r"ульянов"),
    (74, "Челябинская область", "Asia/Yekaterinburg", r"челяб"),
    (75, "Забайкальский край", "Asia/Chita", r"забайкал|\bчита\b"),
    (76, "Ярославская область", "Europe/Moscow", r"ярослав"),
    (77, "Москва", "Europe/Moscow", r"\bмосква"),
    (78, "Санкт-Петербург", "Europe/Moscow", r"петербург"),
    (79, "Еврейская автономная область", "Asia/Vladivostok", r"еврейск|биробиджан"),
    (80, "Донецкая Народная Республика", "Europe/Moscow", r"донецк"),
    (81, "Луганская Народная Республика", "Europe/Moscow", r"луганск"),
    (82, "Республика Крым", "Europe/Simferopol", r"крым|симферопол"),
    (83, "Ненецкий автономный округ", "Europe/Moscow", r"(?<!ямало-)ненецк|нарьян-мар"),
    (84, "Херсонская область", "Europe/Moscow", r"херсон"),
    (85, "Запорожская область", "Europe/Moscow", r"запорож"),
    (86, "Ханты-Мансийский автономный округ — Югра", "Asia/Yekaterinburg", r"ханты|югра|сургут"),
    (87, "Чукотский автономный округ", "Asia/Anadyr", r"чукот|анадыр"),
    (89, "Ямало-Ненецкий автономный округ", "Asia/Yekaterinburg", r"ямало"),
    (92, "Севастополь", "Europe/Simferopol", r"севастопол"),
]

REGIONS: dict[int, Region] = {code: Region(code, name, zone) for code, name, zone, _ in _SUBJECTS}
_STEMS = [(REGIONS[code], re.compile(stems)) for code, _, _, stems in _SUBJECTS]
_PARTS = re.compile(r"\||\*|,|;|\sи\s")
# no region of its own: ranges used across the country
NATIONWIDE = frozenset({"российская федерация", "россия", "рф", "-", ""})


class AmbiguousRegion(ValueError):
    """The text names subjects in different time zones."""


def normalise(text: str) -> str:
    """Lower case, ё as е, one space, and "Ханты - Мансийский" as "ханты-мансийский"."""
    text = text.casefold().replace("ё", "е").replace("/", " ").replace("(", " ").replace(")", " ")
    text = re.sub(r"\s*-\s*", "-", text)
    return re.sub(r"\s+", " ", text).strip()


def match(text: str) -> Region | None:
    """The subject a registry region text names; None when it names none.

    Raises AmbiguousRegion when its parts name subjects in different zones.
    """
    found: list[Region] = []
    for part in _PARTS.split(normalise(text)):
        for region, stem in _STEMS:
            if stem.search(part):
                found.append(region)
    if not found:
        return None
    zones = {r.zone for r in found}
    if len(zones) > 1:
        names = ", ".join(dict.fromkeys(f"{r.name} ({r.zone})" for r in found))
        raise AmbiguousRegion(f"names subjects in different time zones: {names}")
    return found[0]


def nationwide(text: str) -> bool:
    return normalise(text) in NATIONWIDE
