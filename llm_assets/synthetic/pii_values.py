"""Realistic, checksum-valid personal data for forum pages: what a PII filter must find and remove."""

from __future__ import annotations

import random
import string

# Real US area codes (none of them 555 / N11), so phone numbers pass libphonenumber's validation.
US_AREA_CODES = ("212", "213", "303", "305", "312", "404", "415", "503", "512", "602", "617", "646",
                 "702", "713", "718", "801", "818", "919", "206", "215")
EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "mailbox.org", "protonmail.com", "gmx.net",
                 "hotmail.com", "fastmail.com")
# IBAN layouts: country, bank/branch part length in digits or letters, account digits
_IBAN_LAYOUTS = {"DE": ("", 18), "ES": ("", 20), "NL": ("AAAA", 10), "GB": ("AAAA", 14)}


def luhn_check_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # doubled positions, counted from the right of the payload
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    digits = "".join(c for c in number if c.isdigit())
    return luhn_check_digit(digits[:-1]) == digits[-1]


def credit_card(rng: random.Random) -> str:
    """Visa or MasterCard in 4-4-4-4 groups, or an unspaced Amex; Luhn-valid."""
    kind = rng.choice(("visa", "mastercard", "amex"))
    if kind == "amex":
        payload = rng.choice(("34", "37")) + "".join(rng.choices(string.digits, k=12))
        return payload + luhn_check_digit(payload)
    prefix = "4" if kind == "visa" else str(rng.randint(51, 55))
    payload = prefix + "".join(rng.choices(string.digits, k=15 - len(prefix)))
    number = payload + luhn_check_digit(payload)
    sep = rng.choice((" ", "-"))
    return sep.join(number[i:i + 4] for i in range(0, 16, 4))


def iban_check_digits(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    numeric = "".join(str(int(c, 36)) for c in rearranged)
    return f"{98 - int(numeric) % 97:02d}"


def iban_valid(iban: str) -> bool:
    compact = iban.replace(" ", "")
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def iban(rng: random.Random) -> str:
    """An IBAN with correct mod-97 check digits, printed in groups of four."""
    country = rng.choice(sorted(_IBAN_LAYOUTS))
    letters, digit_count = _IBAN_LAYOUTS[country]
    bank = "".join(rng.choice(string.ascii_uppercase) for _ in letters)
    bban = bank + "".join(rng.choices(string.digits, k=digit_count))
    compact = country + iban_check_digits(country, bban) + bban
    return " ".join(compact[i:i + 4] for i in range(0, len(compact), 4))


def us_ssn(rng: random.Random) -> str:
    """AAA-GG-SSSS with an issued-looking area (not 000/666/9xx), non-zero group and serial."""
    while True:
        area = rng.randint(1, 899)
        if area != 666:
            break
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def us_phone(rng: random.Random) -> str:
    area = rng.choice(US_AREA_CODES)
    exchange = rng.randint(200, 999)
    while exchange % 100 == 11 or exchange == 555:
        exchange = rng.randint(200, 999)
    line = rng.randint(1000, 9999)
    style = rng.randrange(3)
    if style == 0:
        return f"({area}) {exchange}-{line}"
    if style == 1:
        return f"{area}-{exchange}-{line}"
    return f"+1 {area} {exchange} {line}"


def email(rng: random.Random, name: str) -> str:
    first, last = name.lower().split(" ", 1)
    last = last.replace(" ", "").replace("'", "")
    local = rng.choice((f"{first}.{last}", f"{first}{rng.randint(1, 99)}", f"{first[0]}{last}",
                        f"{last}.{first}{rng.randint(70, 99)}"))
    return f"{local}@{rng.choice(EMAIL_DOMAINS)}"


def ipv4(rng: random.Random) -> str:
    # public-looking first octet: not 0, 10, 127, 169, 172, 192, or multicast
    first = rng.choice((24, 31, 46, 62, 77, 84, 91, 109, 151, 178, 185, 203, 212))
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
