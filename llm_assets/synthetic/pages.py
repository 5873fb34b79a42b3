"""Every page of the synthetic web, with its ground-truth labels, before it is written to WARC.

`plan_crawl` lays the crawl out: the core pages about the world (encyclopedia, news, blogs, forum threads with
personal data) from this module, the noise every filter must catch from `noise_pages`, then mirrors and near
copies of core pages.
"""

from __future__ import annotations

import random

from llm_assets.profiles import SyntheticSize
from llm_assets.synthetic import pii_values
from llm_assets.synthetic.noise_pages import (
    adult_pages,
    copy_pages,
    foreign_pages,
    junk_pages,
    legacy_charset_pages,
    non_html_pages,
    quiz_pages,
    spam_pages,
    toxic_pages,
)
from llm_assets.synthetic.page import CrawlPlan, Page, chunks, html_page, slug, typo
from llm_assets.synthetic.prose import (
    city_sentences,
    company_sentences,
    person_fact_sentences,
    university_sentences,
)
from llm_assets.synthetic.sites import BLOG_HOSTS, ENCYCLOPEDIA_HOST, FORUM_HOSTS, NEWS_HOSTS
from llm_assets.synthetic.vocab import BLOG_FILLER, FORUM_CHATTER, NEWS_FILLER
from llm_assets.synthetic.world import World

# Share of core pages (encyclopedia, news, blog, forum) each noise kind gets, before size.noise_scale.
NOISE_RATES = {
    "spam": 0.03, "adult": 0.025, "toxic": 0.025, "junk": 0.025, "quiz": 0.02, "foreign": 0.06,
    "mirror": 0.03, "near_duplicate": 0.03, "pdf": 0.01, "image": 0.015, "redirect": 0.015,
    "not_found": 0.015, "legacy_charset": 0.04,
}
# Every kind appears at least this often, so a smoke crawl exercises every filter.
NOISE_MINIMUM = 4


def plan_crawl(rng: random.Random, world: World, size: SyntheticSize, benchmark: list[dict]) -> list[Page]:
    """All pages in crawl order: originals first (shuffled), then mirrors and near copies (shuffled)."""
    plan = CrawlPlan(rng, world, size, benchmark)
    encyclopedia = encyclopedia_pages(plan)
    news_blogs = news_and_blog_pages(plan)
    forum_pages(plan)
    core = len(plan.pages)

    def count(kind: str) -> int:
        return max(NOISE_MINIMUM, round(NOISE_RATES[kind] * core * size.noise_scale))

    spam_pages(plan, count("spam"))
    adult_pages(plan, count("adult"))
    toxic_pages(plan, count("toxic"))
    junk_pages(plan, count("junk"))
    quiz_pages(plan, count("quiz"))
    foreign_pages(plan, max(count("foreign"), 6))
    legacy_charset_pages(plan, count("legacy_charset"), news_blogs)
    non_html_pages(plan, count("pdf"), count("image"), count("redirect"), count("not_found"), list(world.people))
    person_pages = [i for i in encyclopedia if plan.pages[i].category == "person"]
    copy_sources = [i for i in person_pages + news_blogs if plan.pages[i].charset == "utf-8"]
    originals_end = len(plan.pages)
    copy_pages(plan, count("mirror"), count("near_duplicate"), copy_sources)

    order = list(range(originals_end))
    rng.shuffle(order)
    tail = list(range(originals_end, len(plan.pages)))
    rng.shuffle(tail)
    order += tail
    position = {old: new for new, old in enumerate(order)}
    pages = [plan.pages[i] for i in order]
    for page in pages:
        if page.duplicate_of is not None:
            page.duplicate_of = position[page.duplicate_of]
    return pages


def encyclopedia_pages(plan: CrawlPlan) -> list[int]:
    """An article per person, city, company and university; returns their plan indices."""
    rng, world, out = plan.rng, plan.world, []
    for person in world.people:
        sentences = person_fact_sentences(rng, person, world, "encyclopedia")
        sentences.insert(0, f"{person.name} is a {person.occupation} from {world.city(person.birth_city).country}.")
        paragraphs = [" ".join(sentences[:2]), " ".join(sentences[2:])]
        out.append(plan.add(html_page(
            f"https://{ENCYCLOPEDIA_HOST}/wiki/{person.name.replace(' ', '_')}", "encyclopedia", "person",
            "en", "high", person.name, paragraphs, headings={1: "Life and career"})))
    for city in world.cities:
        out.append(plan.add(html_page(
            f"https://{ENCYCLOPEDIA_HOST}/wiki/{city.name.replace(' ', '_')}", "encyclopedia", "city", "en",
            "high", city.name, city_sentences(rng, city, world))))
    for company in world.companies:
        out.append(plan.add(html_page(
            f"https://{ENCYCLOPEDIA_HOST}/wiki/{company.name.replace(' ', '_')}", "encyclopedia",
            "company", "en", "high", company.name, company_sentences(rng, company, world))))
    for uni in world.universities:
        out.append(plan.add(html_page(
            f"https://{ENCYCLOPEDIA_HOST}/wiki/{uni.name.replace(' ', '_')}", "encyclopedia",
            "university", "en", "high", uni.name, university_sentences(rng, uni, world))))
    return out


def news_and_blog_pages(plan: CrawlPlan) -> list[int]:
    """News stories and blog posts about each person, and a business story per company; returns their indices."""
    rng, world, out = plan.rng, plan.world, []
    news_each = max(1, round(5 * plan.size.noise_scale))
    blogs_each = max(1, round(3 * plan.size.noise_scale))
    headlines = ("{n} honoured for decades of work in {field}", "{employer} names {n} to lead new team",
                 "{n} to speak at {city} conference", "Profile: {n}, the {occupation} from {city}",
                 "{n} returns to {university} for anniversary lecture",
                 "Interview: {n} on life at {employer}")
    blog_titles = ("An evening with {n}", "What I learned from {n}", "Notes from a talk by {n}",
                   "Coffee with a {occupation}: {n}", "Why {n} inspires me")
    for person in world.people:
        slots = {"n": person.name, "field": person.field, "employer": person.employer,
                 "city": person.birth_city, "occupation": person.occupation, "university": person.university}
        for i in range(news_each):
            sentences = person_fact_sentences(rng, person, world, "news")
            sentences += rng.sample(NEWS_FILLER, 3)
            rng.shuffle(sentences)
            title = rng.choice(headlines).format(**slots)
            host = NEWS_HOSTS[(i + len(out)) % len(NEWS_HOSTS)]
            url = plan.unique_url(f"https://{host}/{rng.randint(2019, 2024)}/{rng.randint(1, 12):02d}/"
                                  f"{slug(title)}.html")
            out.append(plan.add(html_page(url, "news", "news", "en", rng.choice(("high", "medium")),
                                          title, chunks(sentences, rng))))
        for i in range(blogs_each):
            sentences = person_fact_sentences(rng, person, world, "blog")
            sentences += rng.sample(BLOG_FILLER, 3)
            rng.shuffle(sentences)
            title = rng.choice(blog_titles).format(**slots)
            host = BLOG_HOSTS[(i + len(out)) % len(BLOG_HOSTS)]
            url = plan.unique_url(f"https://{host}/posts/{slug(title)}.html")
            out.append(plan.add(html_page(url, "blog", "blog", "en", rng.choice(("medium", "high")),
                                          title, chunks(sentences, rng))))
    for company in world.companies:
        title = f"{company.name} reports strong year in {company.industry}"
        sentences = [f"{company.name}, founded in {company.founded}, is headquartered in {company.hq_city}.",
                     f"The {company.industry} firm said demand had grown in every region."]
        sentences += rng.sample(NEWS_FILLER, 3)
        url = plan.unique_url(f"https://{rng.choice(NEWS_HOSTS)}/business/{slug(title)}.html")
        out.append(plan.add(html_page(url, "news", "news", "en", "medium", title, chunks(sentences, rng))))
    return out


def forum_pages(plan: CrawlPlan) -> list[int]:
    """Forum threads in lower-case, typo-ridden chatter, one factual reply each, with the personal data posters
    leave (emails, phones, IPs, sometimes a card, IBAN or SSN) labelled in `pii`; returns their indices."""
    rng, out = plan.rng, []
    threads = max(NOISE_MINIMUM, round(len(plan.world.people) * plan.size.noise_scale))
    for t in range(threads):
        person = rng.choice(plan.world.people)
        topic = rng.choice((f"anyone know where {person.name} works now?",
                            f"{person.name} talk in {person.employer_city} - worth going?",
                            "best coffee place near the station?", "help with my bank transfer",
                            "moving to a new city, tips?"))
        posts, found, headings = [], [], {}
        for p in range(rng.randint(3, 6)):
            user = rng.choice(plan.world.people).name
            text = typo(rng, " ".join(rng.sample(FORUM_CHATTER, 2)))
            if p == 1:  # one clean factual reply per thread
                text += f" fwiw {person.name} works at {person.employer} in {person.employer_city}."
            roll = rng.random()
            if roll < 0.45:
                value = pii_values.email(rng, user)
                text += f" -- {user.split()[0]} | {value}"
            elif roll < 0.65:
                value = pii_values.us_phone(rng)
                text += f" call or text me at {value}"
            elif roll < 0.8:
                value = pii_values.ipv4(rng)
                text += f" (posted from {value})"
            else:
                value = ""
            if value:
                found.append(value)
            if rng.random() < 0.25:
                kind = rng.choice(("card", "iban", "ssn"))
                if kind == "card":
                    value = pii_values.credit_card(rng)
                    text += f" btw my card {value} got charged twice, is that normal??"
                elif kind == "iban":
                    value = pii_values.iban(rng)
                    text += f" just send the money to my IBAN {value} thx"
                else:
                    value = pii_values.us_ssn(rng)
                    text += f" they asked for my social security number {value} on the phone, scam?"
                found.append(value)
            headings[p] = f"{user.split()[0].lower()}{rng.randint(1, 99)} wrote:"
            posts.append(text)
        host = FORUM_HOSTS[t % len(FORUM_HOSTS)]
        url = plan.unique_url(f"https://{host}/thread/{rng.randint(10000, 99999)}-{slug(topic)[:40]}")
        out.append(plan.add(html_page(url, "forum", "forum_post", "en", rng.choice(("low", "medium")),
                                      topic, posts, headings=headings, pii=found)))
    return out
