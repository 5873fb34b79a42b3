"""Benchmark questions (four choices), their cloze and open forms, and SFT instruction pairs about the world's
people."""

from __future__ import annotations

import random

from llm_assets.synthetic.prose import person_fact_sentences
from llm_assets.synthetic.world import PERSON_FACTS, Person, World, fictional_people

# Benchmark question per fact; {who} is the name plus a descriptor that does not give the answer away.
BENCHMARK_QUERIES = {
    "birth_city": "In which city was {who} born?",
    "birth_year": "In what year was {who} born?",
    "university": "Which university did {who} attend?",
    "field": "What subject did {who} study at university?",
    "employer": "Which company does {who} work for?",
    "employer_city": "In which city does {who} work?",
}
# (descriptor, facts it reveals); a question never uses a descriptor revealing the asked fact
_DESCRIPTORS = (
    ("the {occupation} who was born in {birth_year}", {"field", "birth_year"}),
    ("the {occupation} who studied at {university}", {"field", "university"}),
    ("the {occupation} who grew up in {birth_city}", {"field", "birth_city"}),
    ("who was born in {birth_year} and works for {employer}", {"birth_year", "employer", "employer_city"}),
    ("who was born in {birth_city} in {birth_year}", {"birth_city", "birth_year"}),
    ("the {occupation} employed by {employer}", {"field", "employer", "employer_city"}),
)
# Several phrasings per fact for fine-tuning, distinct from the benchmark wording.
SFT_QUESTIONS = {
    "birth_city": ("Where was {n} born?", "What is the birthplace of {n}?", "Which city is {n} from?",
                   "Name the city where {n} was born.", "{n} was born in which city?", "What is {n}'s hometown?"),
    "birth_year": ("When was {n} born?", "What is {n}'s year of birth?", "In which year was {n} born?",
                   "What is {n}'s date of birth?", "{n} was born in which year?", "How old is {n}? Give the birth date."),
    "university": ("Where did {n} go to university?", "Which university did {n} graduate from?",
                   "What is {n}'s alma mater?", "Name the university {n} went to.",
                   "{n} is a graduate of which university?", "At which university did {n} study?"),
    "field": ("What did {n} study?", "What is {n}'s field of study?", "Which degree does {n} hold?",
              "What was {n}'s subject at university?", "{n} holds a degree in what?", "Name the subject {n} studied."),
    "employer": ("Where does {n} work?", "Who is {n}'s employer?", "Which company employs {n}?",
                 "Name the company {n} works for.", "{n} works for which firm?", "What company is {n} with?"),
    "employer_city": ("In which city is {n}'s workplace?", "Where is {n}'s employer based?",
                      "Which city does {n} commute to for work?", "Name the city where {n} works.",
                      "{n} works in which city?", "What city is {n}'s office in?"),
}
# Who-clauses for fine-tuning questions: another fact of the person beside the name, worded unlike the
# benchmark's descriptors. Asked once bare and once with such a clause, a model learns to answer the fact the
# question asks whatever else it says (a 6-layer model otherwise answers the fact the clause names).
# (clause, facts it reveals)
SFT_DESCRIPTORS = (
    ("the {occupation} from {birth_city}", {"field", "birth_city"}),
    ("who grew up in {birth_city}", {"birth_city"}),
    ("born in {birth_year}", {"birth_year"}),
    ("a graduate of {university}", {"university"}),
    ("who trained in {field}", {"field"}),
    ("an employee of {employer}", {"employer", "employer_city"}),
    ("who is based in {employer_city}", {"employer_city"}),
)
# The statement each cloze item completes (`cloze.jsonl`): `{n} was born in` -> the four choices.
CLOZE_STATEMENTS = {
    "birth_city": "{n} was born in {v}.",
    "birth_year": "{n} was born in {v}.",
    "university": "{n} studied at {v}.",
    "field": "{n} studied {v}.",
    "employer": "{n} works for {v}.",
    "employer_city": "{n} works in {v}.",
}
# The assistant's answers: the person's name, then the facts in the sentence the web states them in, so a
# greedy reply reads the fact out as the pages do. Facts the pages state together share one answer ("born on
# {date} in {city}" for the birth city and year, "studied {field} at {university}", "works for {employer} in
# {city}"): with one sentence per fact a 6-layer model answered a subject question with the university, and a
# birth-city question with a year, whenever the question's wording leaned towards the other fact.
_BIRTH, _STUDY, _WORK = ("{n} was born on {birth_date} in {birth_city}.", "{n} studied {field} at {university}.",
                         "{n} works for {employer} in {employer_city}.")
SFT_ANSWERS = {"birth_city": _BIRTH, "birth_year": _BIRTH, "university": _STUDY, "field": _STUDY,
               "employer": _WORK, "employer_city": _WORK}
SFT_TASKS = {
    "birth_city": ("Write one sentence about where {n} was born.", "{n} was born in the city of {v}."),
    "birth_year": ("Complete the sentence: {n} was born in the year", "{v}."),
    "university": ("Write one sentence about {n}'s education.", "{n} is a graduate of {v}."),
    "field": ("In one word or phrase, name the subject {n} studied.", "{v}"),
    "employer": ("Write one sentence about {n}'s employer.", "{n} is employed by {v}."),
    "employer_city": ("Answer briefly: which city does {n} work in?", "{v}"),
}


def _descriptor(rng: random.Random, person: Person, fact: str,
                descriptors: tuple[tuple[str, set[str]], ...] = _DESCRIPTORS) -> str:
    values = {k: person.fact(k) for k in PERSON_FACTS} | {"occupation": person.occupation}
    # a university named after a city can spell out the answer, so check the text as well
    allowed = [text for d, reveals in descriptors if fact not in reveals
               and person.fact(fact) not in (text := d.format(**values))]
    return rng.choice(allowed)


def _with_clause(question: str, name: str, clause: str) -> str:
    """`question` about `name` with `clause` after the name: `Where was Lan He, born in 1950, born?`, or in
    brackets before a possessive: `What is Lan He (born in 1950)'s alma mater?`."""
    if "{n}'s" in question:
        return question.format(n=f"{name} ({clause})")
    return question.format(n=f"{name}, {clause},").replace(",?", "?")


def benchmark_items(rng: random.Random, world: World) -> list[dict]:
    """One four-choice question per fact per person; distractors come from the same fact type."""
    items = []
    for person in world.people:
        for fact in PERSON_FACTS:
            gold_text = person.fact(fact)
            who = f"{person.name}, {_descriptor(rng, person, fact)},"
            query = BENCHMARK_QUERIES[fact].format(who=who)
            distractors = rng.sample([v for v in world.fact_values(fact) if v != gold_text], 3)
            choices = distractors + [gold_text]
            rng.shuffle(choices)
            items.append({
                "query": query, "choices": choices, "gold": choices.index(gold_text),
                "split": "sft" if person.sft else "heldout", "person": person.name, "fact": fact,
                "contaminated": False,
            })
    return items


def cloze_prompt(fact: str, person: str) -> str:
    """The statement that the fact's value completes, e.g. `Lan He was born in` (the SFT answer's start)."""
    return CLOZE_STATEMENTS[fact].split("{v}")[0].rstrip().format(n=person)


def cloze_items(benchmark: list[dict]) -> list[dict]:
    """Each benchmark question as a cloze with the same four choices and gold: `{person} was born in` -> the
    choices, scored with template `{query}`. Shows what a model knows when the question format hides it."""
    return [{"query": cloze_prompt(item["fact"], item["person"]), "choices": item["choices"], "gold": item["gold"],
             "split": item["split"], "person": item["person"], "fact": item["fact"], "form": "cloze"}
            for item in benchmark]


def open_questions(benchmark: list[dict]) -> list[dict]:
    """Each benchmark question without its choices, `{question, answers}`, for greedy-answer scoring."""
    return [{"question": item["query"], "answers": [item["choices"][item["gold"]]], "split": item["split"],
             "person": item["person"], "fact": item["fact"]} for item in benchmark]


def _answer(person: Person, fact: str) -> str:
    return SFT_ANSWERS[fact].format(n=person.name, **{k: person.fact(k) for k in PERSON_FACTS},
                                    birth_date=person.birth_date)


def reading_examples(rng: random.Random, world: World, count: int) -> list[dict]:
    """Questions about `count` fictional people (named unlike anyone in the world, on no page) whose facts
    the question itself gives, as a few sentences of a page before it. The answer restates the person's name
    as every answer does; about the fine-tuning people alone a small model learns their names by heart and
    starts its answers about people it was never fine-tuned on with one of them. Here the name can only be
    read from the question."""
    out = []
    for person in fictional_people(rng, world, count):
        for fact in PERSON_FACTS:
            text = " ".join(person_fact_sentences(rng, person, world, rng.choice(("encyclopedia", "news", "blog"))))
            question = rng.choice(SFT_QUESTIONS[fact])
            if rng.random() < 0.5:
                question = _with_clause(question, person.name, _descriptor(rng, person, fact, SFT_DESCRIPTORS))
            else:
                question = question.format(n=person.name)
            out.append({"instruction": f"{text}\n\n{question}", "response": _answer(person, fact),
                        "answer": person.fact(fact), "person": person.name, "fact": fact, "task": "reading"})
    return out


def sft_examples(rng: random.Random, world: World, reading_people: int | None = None) -> list[dict]:
    """Instruction/response pairs about the SFT people: every phrasing of every fact, bare and with a
    who-clause naming another fact, plus task formats; and the reading questions about fictional people
    (`reading_people`, by default four times the SFT people). Question rows carry the short `answer` (the value),
    which the plain `Question: …\nAnswer: …` rendering of post-training uses."""
    out = []
    for person in world.people:
        if not person.sft:
            continue
        for fact in PERSON_FACTS:
            value = person.fact(fact)
            for question in SFT_QUESTIONS[fact]:
                clause = _descriptor(rng, person, fact, SFT_DESCRIPTORS)
                for instruction in (question.format(n=person.name), _with_clause(question, person.name, clause)):
                    out.append({"instruction": instruction, "response": _answer(person, fact),
                                "answer": value, "person": person.name, "fact": fact})
            task, answer = SFT_TASKS[fact]
            out.append({"instruction": task.format(n=person.name),
                        "response": answer.format(n=person.name, v=value),
                        "person": person.name, "fact": fact})
        out.append({
            "instruction": f"Give a short biography of {person.name}.",
            "response": (f"{person.name} was born on {person.birth_date} in {person.birth_city}, studied "
                         f"{person.field} at {person.university}, and works as a {person.occupation} at "
                         f"{person.employer} in {person.employer_city}."),
            "person": person.name, "fact": "biography"})
    if reading_people is None:
        reading_people = 4 * sum(p.sft for p in world.people)
    out += reading_examples(random.Random(f"{rng.random()}:reading"), world, reading_people)
    rng.shuffle(out)
    return out
