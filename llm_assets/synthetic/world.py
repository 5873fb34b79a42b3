"""The synthetic world: people, cities, companies and universities, drawn from a seeded generator."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from llm_assets.profiles import SyntheticSize
from llm_assets.synthetic.vocab import (
    CITIES,
    COMPANY_STEMS,
    COMPANY_SUFFIXES,
    FIELDS,
    INDUSTRIES,
    MONTHS,
    NAME_POOLS,
    UNIVERSITY_PATTERNS,
)

# The facts a person has; each benchmark and SFT item asks about one of them.
PERSON_FACTS = ("birth_city", "birth_year", "university", "field", "employer", "employer_city")


@dataclass(frozen=True)
class City:
    name: str
    country: str


@dataclass(frozen=True)
class Company:
    name: str
    industry: str
    hq_city: str
    founded: int


@dataclass(frozen=True)
class University:
    name: str
    city: str


@dataclass(frozen=True)
class Person:
    name: str
    birth_year: int
    birth_month: int  # 1..12
    birth_day: int
    birth_city: str
    university: str
    field: str
    occupation: str
    employer: str
    employer_city: str
    sft: bool  # facts appear in the fine-tuning set; otherwise held out

    @property
    def surname(self) -> str:
        return self.name.split(" ", 1)[1]

    @property
    def birth_date(self) -> str:
        return f"{self.birth_day} {MONTHS[self.birth_month - 1]} {self.birth_year}"

    @property
    def birth_date_us(self) -> str:
        return f"{MONTHS[self.birth_month - 1]} {self.birth_day}, {self.birth_year}"

    def fact(self, key: str) -> str:
        """The answer string for one of PERSON_FACTS."""
        return str(getattr(self, key))


@dataclass(frozen=True)
class World:
    people: tuple[Person, ...]
    cities: tuple[City, ...]
    companies: tuple[Company, ...]
    universities: tuple[University, ...]

    def city(self, name: str) -> City:
        return next(c for c in self.cities if c.name == name)

    def company(self, name: str) -> Company:
        return next(c for c in self.companies if c.name == name)

    def university(self, name: str) -> University:
        return next(u for u in self.universities if u.name == name)

    def fact_values(self, key: str) -> list[str]:
        """Every value a fact can take in this world (distractor pool), sorted for determinism."""
        if key in ("birth_city", "employer_city"):
            return sorted(c.name for c in self.cities)
        if key == "university":
            return sorted(u.name for u in self.universities)
        if key == "employer":
            return sorted(c.name for c in self.companies)
        if key == "field":
            return sorted(FIELDS)
        if key == "birth_year":
            return [str(y) for y in range(1945, 2001)]
        raise ValueError(f"unknown person fact {key!r}; expected one of {PERSON_FACTS}")

    def to_json(self) -> dict:
        return {
            "people": [asdict(p) | {"birth_date": p.birth_date} for p in self.people],
            "cities": [asdict(c) for c in self.cities],
            "companies": [asdict(c) for c in self.companies],
            "universities": [asdict(u) for u in self.universities],
        }


def _name_capacity() -> int:
    """How many people the name pools can name (half the first x last combinations, so drawing stays quick)."""
    return sum(len(f) for f, _ in NAME_POOLS.values()) * sum(len(s) for _, s in NAME_POOLS.values()) // 2


def _unique_names(rng: random.Random, count: int, taken: frozenset[str] = frozenset()) -> list[str]:
    """`count` distinct full names drawn from the pools, none of them in `taken`."""
    cultures = sorted(NAME_POOLS)
    if count + len(taken) > _name_capacity():
        raise ValueError(f"SyntheticSize.people={count} is too many for the name pools (max {_name_capacity()})")
    names: list[str] = []
    seen: set[str] = set(taken)
    while len(names) < count:
        firsts, lasts = NAME_POOLS[rng.choice(cultures)]
        # mostly same-culture names, sometimes mixed (as in any real city)
        if rng.random() < 0.2:
            lasts = NAME_POOLS[rng.choice(cultures)][1]
        name = f"{rng.choice(firsts)} {rng.choice(lasts)}"
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def build_world(rng: random.Random, size: SyntheticSize) -> World:
    """Draw a world of the given size; every draw comes from `rng`, so a seed fixes the world."""
    if size.cities > len(CITIES):
        raise ValueError(f"SyntheticSize.cities={size.cities} exceeds the {len(CITIES)} cities in the pool")
    if size.universities > size.cities * len(UNIVERSITY_PATTERNS):
        raise ValueError("SyntheticSize.universities is larger than cities x university name patterns")
    if size.companies > len(COMPANY_STEMS) * len(COMPANY_SUFFIXES):
        raise ValueError(f"SyntheticSize.companies={size.companies} exceeds the company name pool")
    if min(size.people, size.cities, size.companies, size.universities) < 4:
        raise ValueError("SyntheticSize needs at least 4 people, cities, companies and universities "
                         "(benchmark questions have four choices)")

    cities = tuple(City(name, country) for name, country in rng.sample(CITIES, size.cities))
    city_names = [c.name for c in cities]

    universities: list[University] = []
    uni_names: set[str] = set()
    while len(universities) < size.universities:
        city = rng.choice(city_names)
        name = rng.choice(UNIVERSITY_PATTERNS).format(city=city)
        if name not in uni_names:
            uni_names.add(name)
            universities.append(University(name, city))

    companies: list[Company] = []
    company_names: set[str] = set()
    while len(companies) < size.companies:
        name = f"{rng.choice(COMPANY_STEMS)} {rng.choice(COMPANY_SUFFIXES)}"
        if name not in company_names:
            company_names.add(name)
            companies.append(Company(name, rng.choice(INDUSTRIES), rng.choice(city_names),
                                     rng.randint(1890, 2015)))

    names = _unique_names(rng, size.people)
    sft_count = round(size.people * size.sft_fraction)
    sft_flags = [True] * sft_count + [False] * (size.people - sft_count)
    rng.shuffle(sft_flags)
    people = [_draw_person(rng, name, sft, city_names, universities, companies)
              for name, sft in zip(names, sft_flags, strict=True)]
    return World(tuple(people), cities, tuple(companies), tuple(universities))


def _draw_person(rng: random.Random, name: str, sft: bool, city_names: Sequence[str],
                 universities: Sequence[University], companies: Sequence[Company]) -> Person:
    field = rng.choice(sorted(FIELDS))
    employer = rng.choice(companies)
    return Person(
        name=name, birth_year=rng.randint(1945, 2000), birth_month=rng.randint(1, 12),
        birth_day=rng.randint(1, 28), birth_city=rng.choice(city_names),
        university=rng.choice(universities).name, field=field, occupation=FIELDS[field],
        employer=employer.name, employer_city=employer.hq_city, sft=sft,
    )


def fictional_people(rng: random.Random, world: World, count: int) -> list[Person]:
    """`count` people (fewer where the name pools run out) drawn like the world's but named unlike anyone in
    it, and never on any page: for fine-tuning tasks whose facts come with the question (reading), so no fact
    of the world is touched."""
    count = min(count, _name_capacity() - len(world.people))
    names = _unique_names(rng, count, frozenset(p.name for p in world.people))
    city_names = [c.name for c in world.cities]
    return [_draw_person(rng, name, True, city_names, world.universities, world.companies) for name in names]
