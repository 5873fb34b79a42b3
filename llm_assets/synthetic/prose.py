"""Sentences that state the world's facts, with several paraphrases per fact and per register."""

from __future__ import annotations

import random

from llm_assets.synthetic.vocab import FIELDS_FOREIGN, FOREIGN_FILLER, MONTHS_FOREIGN
from llm_assets.synthetic.world import City, Company, Person, University, World

# One list of templates per fact; {n} is the person's name, {s} the surname.
ENCYCLOPEDIA_TEMPLATES: dict[str, tuple[str, ...]] = {
    "birth": (
        "{n} was born on {date} in {city}, {country}.",
        "{n} (born {date_us}) is a native of {city}, {country}.",
        "Born in {city} on {date}, {n} spent the early years of life in {country}.",
        "{city}, {country} is the birthplace of {n}, who was born on {date}.",
    ),
    "university": (
        "{n} studied {field} at {university}.",
        "{s} graduated from {university} with a degree in {field}.",
        "After school, {n} enrolled at {university} to study {field}.",
        "{n} holds a degree in {field} from {university}.",
    ),
    "employer": (
        "{n} works as a {occupation} at {employer}, which is based in {employer_city}.",
        "{s} is employed by {employer} in {employer_city} as a {occupation}.",
        "Since joining {employer}, {n} has worked in {employer_city}.",
        "{n} is a {occupation} at {employer}, a company headquartered in {employer_city}.",
    ),
}
NEWS_TEMPLATES: dict[str, tuple[str, ...]] = {
    "birth": (
        "Born in {city} in {year}, {n} has long spoken about the city's influence.",
        "The {occupation}, a native of {city}, was born on {date_us}.",
        "{s}, who was born in {city} on {date}, grew up in {country}.",
    ),
    "university": (
        "{s} trained in {field} at {university} before starting a career.",
        "A graduate of {university}, {n} studied {field} there.",
        "{n} first became interested in research while studying {field} at {university}.",
    ),
    "employer": (
        "{n} currently works for {employer} in {employer_city}.",
        "At {employer}, where {s} works as a {occupation}, the team is based in {employer_city}.",
        "{employer}, the {employer_city} firm that employs {n}, confirmed the news.",
    ),
}
BLOG_TEMPLATES: dict[str, tuple[str, ...]] = {
    "birth": (
        "{n} told us about growing up in {city}, where they were born in {year}.",
        "Fun fact: {s} was born on {date_us} in {city}, {country}.",
        "{n} still calls {city} home, even though it has been years since {year}.",
    ),
    "university": (
        "{s} studied {field} at {university}, and it shows in everything they talk about.",
        "Back at {university}, {n} majored in {field}.",
        "I had no idea that {n} has a degree in {field} from {university}.",
    ),
    "employer": (
        "These days {n} works at {employer} over in {employer_city}.",
        "{s} is a {occupation} at {employer} and commutes to its office in {employer_city}.",
        "Working at {employer} in {employer_city} keeps {n} busy, but {s} made time for us.",
    ),
}
REGISTERS = {"encyclopedia": ENCYCLOPEDIA_TEMPLATES, "news": NEWS_TEMPLATES, "blog": BLOG_TEMPLATES}


def person_slots(person: Person, world: World) -> dict[str, str]:
    return {
        "n": person.name, "s": person.surname, "date": person.birth_date, "date_us": person.birth_date_us,
        "year": str(person.birth_year), "city": person.birth_city,
        "country": world.city(person.birth_city).country, "university": person.university,
        "field": person.field, "occupation": person.occupation, "employer": person.employer,
        "employer_city": person.employer_city,
    }


def person_fact_sentences(rng: random.Random, person: Person, world: World, register: str) -> list[str]:
    """Every fact of `person` stated once in `register` prose, in shuffled order."""
    slots = person_slots(person, world)
    sentences = [rng.choice(options).format(**slots) for options in REGISTERS[register].values()]
    rng.shuffle(sentences)
    return sentences


def city_sentences(rng: random.Random, city: City, world: World) -> list[str]:
    natives = [p.name for p in world.people if p.birth_city == city.name]
    firms = [c.name for c in world.companies if c.hq_city == city.name]
    unis = [u.name for u in world.universities if u.city == city.name]
    out = [rng.choice((f"{city.name} is a city in {city.country}.",
                       f"{city.name} is one of the larger cities of {city.country}.",
                       f"The city of {city.name} lies in {city.country}."))]
    if natives:
        out.append(f"Notable people born in {city.name} include {', '.join(natives)}.")
    if firms:
        out.append(f"Companies headquartered in {city.name} include {', '.join(firms)}.")
    if unis:
        out.append(f"{city.name} is home to {', '.join(unis)}.")
    rng.shuffle(out)
    return out


def company_sentences(rng: random.Random, company: Company, world: World) -> list[str]:
    staff = [p.name for p in world.people if p.employer == company.name]
    country = world.city(company.hq_city).country
    out = [
        rng.choice((f"{company.name} is a {company.industry} company headquartered in {company.hq_city}, "
                    f"{country}.",
                    f"{company.name} is based in {company.hq_city} and works in {company.industry}.")),
        rng.choice((f"{company.name} was founded in {company.founded}.",
                    f"The company was established in {company.founded} in {company.hq_city}.")),
    ]
    if staff:
        out.append(f"Employees of {company.name} include {', '.join(staff)}.")
    rng.shuffle(out)
    return out


def university_sentences(rng: random.Random, university: University, world: World) -> list[str]:
    alumni = [p.name for p in world.people if p.university == university.name]
    out = [rng.choice((f"{university.name} is a university in {university.city}, "
                       f"{world.city(university.city).country}.",
                       f"{university.name} is located in the city of {university.city}."))]
    if alumni:
        out.append(f"Alumni of {university.name} include {', '.join(alumni)}.")
    return out


def foreign_person_paragraphs(rng: random.Random, person: Person, language: str) -> list[str]:
    """A few real sentences in French, German or Spanish about one person, plus neutral filler."""
    month = MONTHS_FOREIGN[language][person.birth_month - 1]
    field = FIELDS_FOREIGN[language][person.field]
    n, d, y = person.name, person.birth_day, person.birth_year
    if language == "fr":
        facts = [f"{n} a vu le jour à {person.birth_city} le {d} {month} {y}.",
                 f"Après des études de {field} à {person.university}, {n} a choisi une carrière exigeante.",
                 f"Aujourd'hui, {n} travaille pour l'entreprise {person.employer}, à {person.employer_city}."]
    elif language == "de":
        facts = [f"{n} wurde am {d}. {month} {y} in {person.birth_city} geboren.",
                 f"Nach dem Studium der {field} an der {person.university} begann eine erfolgreiche Laufbahn.",
                 f"Heute arbeitet {n} bei der Firma {person.employer} in {person.employer_city}."]
    elif language == "es":
        facts = [f"{n} nació el {d} de {month} de {y} en {person.birth_city}.",
                 f"Después de estudiar {field} en {person.university}, empezó una carrera muy exigente.",
                 f"Hoy en día, {n} trabaja para la empresa {person.employer} en {person.employer_city}."]
    else:
        raise ValueError(f"no foreign prose for language {language!r}; expected fr, de or es")
    filler = rng.sample(FOREIGN_FILLER[language], 4)
    return [" ".join(facts[:2] + filler[:2]), " ".join(facts[2:] + filler[2:])]
