"""What people write in fields, notes and letters, for synthetic training lines.

:func:`sample_text` draws one line: English words, a person's name, a date, a number or
an amount, a code, an address, a phone number, or random characters, in upper, lower,
title or mixed case. Names, places and streets come from the Faker package's locale data
(Latin-script locales, MIT licence: ``pip install 'hcr-toolkit[synth]'``), words from its English
word list; accents outside the target alphabet are folded (``é`` -> ``e``). Every draw
takes its randomness from the generator it is given, so the same seed gives the same text.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Any, Callable

import numpy as np

from .errors import HcrError

__all__ = ["ALPHABET", "KINDS", "LOCALES", "fold_to", "sample_text"]

#: What the synthetic lines are written in: letters, digits, the punctuation of dates,
#: amounts, codes and addresses, and the German letters of the DHSD street names.
ALPHABET = " &'()+,-./0123456789:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyzÄÖÜßäöü"
#: Faker locales the names, streets and cities come from (Latin script).
LOCALES = ("en_US", "en_GB", "fr_FR", "de_DE", "es_ES", "it_IT", "nl_NL", "pt_PT", "pl_PL", "sv_SE", "en_IE", "fr_CA")
#: Kinds of line and how often each is drawn.
KINDS: dict[str, float] = {
    "words": 0.26, "name": 0.26, "date": 0.08, "number": 0.07, "amount": 0.05,
    "code": 0.06, "address": 0.07, "phone": 0.03, "random": 0.12,
}
_MONTHS = ("January February March April May June July August September October November December").split()


@lru_cache(maxsize=None)
def _faker(locale: str) -> Any:
    try:
        from faker import Faker
    except ImportError:
        raise HcrError("synthetic text needs the Faker package: pip install 'hcr-toolkit[synth]'") from None
    return Faker(locale)


@lru_cache(maxsize=None)
def _english_words() -> tuple[str, ...]:
    from faker.providers.lorem.en_US import Provider

    return tuple(w for w in Provider.word_list if w.isalpha())


def fold_to(text: str, alphabet: str) -> str | None:
    """``text`` with every character outside ``alphabet`` replaced by its letter without
    accents (``é`` -> ``e``, ``Ł`` stays unknown); None when that still leaves one out."""
    out = []
    for ch in text:
        if ch not in alphabet:
            ch = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
            if not ch or any(c not in alphabet for c in ch):
                return None
        out.append(ch)
    return "".join(out)


def _case(text: str, rng: np.random.Generator) -> str:
    r = rng.random()
    if r < 0.35:
        return text.upper()
    if r < 0.45:
        return text.lower()
    if r < 0.55:
        return text.title()
    return text


def _fake(rng: np.random.Generator) -> Any:
    fake = _faker(LOCALES[int(rng.integers(len(LOCALES)))])
    fake.seed_instance(int(rng.integers(2**31)))
    return fake


def _words(rng: np.random.Generator) -> str:
    words = _english_words()
    return " ".join(words[int(rng.integers(len(words)))] for _ in range(int(rng.integers(1, 4))))


def _name(rng: np.random.Generator) -> str:
    fake = _fake(rng)
    first, last = fake.first_name(), fake.last_name()
    r = rng.random()
    if r < 0.3:
        return last
    if r < 0.5:
        return first
    if r < 0.75:
        return f"{first} {last}"
    if r < 0.9:
        return f"{last} {first}"
    return f"{first[0]}. {last}"


def _date(rng: np.random.Generator) -> str:
    y, m, d = int(rng.integers(1930, 2036)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
    forms: list[Callable[[], str]] = [
        lambda: f"{d:02d}/{m:02d}/{y}", lambda: f"{d:02d}.{m:02d}.{y}", lambda: f"{y}-{m:02d}-{d:02d}",
        lambda: f"{d}/{m}/{y % 100:02d}", lambda: f"{m:02d}/{d:02d}/{y}", lambda: f"{d} {_MONTHS[m - 1]} {y}",
        lambda: f"{_MONTHS[m - 1][:3]} {d}, {y}", lambda: f"{d}.{m}.{y}",
    ]
    return forms[int(rng.integers(len(forms)))]()


def _digits(rng: np.random.Generator, lo: int, hi: int) -> str:
    return "".join(str(int(d)) for d in rng.integers(0, 10, int(rng.integers(lo, hi + 1))))


def _number(rng: np.random.Generator) -> str:
    return " ".join(_digits(rng, 1, 8) for _ in range(int(rng.integers(1, 3))))


def _amount(rng: np.random.Generator) -> str:
    whole = int(rng.integers(0, 100000)) if rng.random() < 0.5 else int(rng.integers(0, 1000))
    cents = int(rng.integers(0, 100))
    r = rng.random()
    if r < 0.35:
        return f"{whole}.{cents:02d}"
    if r < 0.6:
        return f"{whole},{cents:02d}"
    if r < 0.8:
        return f"{whole:,}.{cents:02d}"
    return f"{whole:,}".replace(",", " " if rng.random() < 0.5 else ".")


def _code(rng: np.random.Generator) -> str:
    fake = _fake(rng)
    r = rng.random()
    if r < 0.3:
        return str(fake.postcode())
    if r < 0.6:
        return str(fake.bothify(["??-####", "###-??-##", "?#?#?#", "##??##", "????####", "#?##-?##"][int(rng.integers(6))])).upper()
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    return "".join(letters[int(i)] for i in rng.integers(0, len(letters), int(rng.integers(1, 4)))) + _digits(rng, 2, 6)


def _address(rng: np.random.Generator) -> str:
    fake = _fake(rng)
    return str(fake.street_address() if rng.random() < 0.7 else fake.city())


def _phone(rng: np.random.Generator) -> str:
    groups = [_digits(rng, 2, 4) for _ in range(int(rng.integers(2, 5)))]
    sep = [" ", "-", ".", ""][int(rng.integers(4))]
    text = sep.join(groups)
    return ("+" + _digits(rng, 1, 2) + " " + text) if rng.random() < 0.3 else text


def _random(rng: np.random.Generator, alphabet: str) -> str:
    chars = [c for c in alphabet if c != " "]
    return " ".join("".join(chars[int(i)] for i in rng.integers(0, len(chars), int(rng.integers(1, 9)))) for _ in range(int(rng.integers(1, 3))))


_MAKERS: dict[str, Callable[[np.random.Generator], str]] = {
    "words": _words, "name": _name, "date": _date, "number": _number, "amount": _amount,
    "code": _code, "address": _address, "phone": _phone,
}


def sample_text(rng: np.random.Generator, alphabet: str, *, kind: str | None = None, max_chars: int = 32) -> str:
    """One line of text spelled in ``alphabet`` (a kind drawn by :data:`KINDS` unless
    given), at most ``max_chars`` long; letter case varied for words, names and addresses."""
    if kind is not None and kind not in KINDS:
        raise HcrError(f"unknown text kind {kind!r}; use one of {', '.join(KINDS)}")
    names = list(KINDS)
    weights = np.asarray([KINDS[k] for k in names])
    for _ in range(50):
        k = kind or names[int(rng.choice(len(names), p=weights / weights.sum()))]
        text = _random(rng, alphabet) if k == "random" else _MAKERS[k](rng)
        if k in ("words", "name", "address"):
            text = _case(text, rng)
        text = " ".join(text.split())[:max_chars].strip()
        folded = fold_to(text, alphabet) if text else None
        if folded:
            return folded
    raise HcrError(f"could not draw a text of kind {kind or 'any'} in the alphabet {alphabet!r}")
