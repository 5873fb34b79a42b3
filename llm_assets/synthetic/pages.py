"""Every page of the synthetic web, with its ground-truth labels, before it is written to WARC."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field, replace

from llm_assets.profiles import SyntheticSize
from llm_assets.synthetic import media, pii
from llm_assets.synthetic.prose import (
    city_sentences,
    company_sentences,
    foreign_person_paragraphs,
    person_fact_sentences,
    university_sentences,
)
from llm_assets.synthetic.sites import (
    ADULT_HOSTS,
    BLOG_HOSTS,
    ENCYCLOPEDIA_HOST,
    FOREIGN_HOSTS,
    FORUM_HOSTS,
    JUNK_HOSTS,
    MIRROR_HOSTS,
    NEWS_HOSTS,
    QUIZ_HOSTS,
    REPRINT_HOSTS,
    SPAM_HOSTS,
    TOXIC_HOSTS,
    render_html,
)
from llm_assets.synthetic.vocab import (
    BLOG_FILLER,
    FORUM_CHATTER,
    NEWS_FILLER,
    NSFW_PHRASES,
    SPAM_KEYWORDS,
    TOXIC_LINES,
)
from llm_assets.synthetic.world import Person, World

# Share of core pages (encyclopedia, news, blog, forum) each noise kind gets, before size.noise_scale.
NOISE_RATES = {
    "spam": 0.03, "adult": 0.025, "toxic": 0.025, "junk": 0.025, "quiz": 0.02, "foreign": 0.06,
    "mirror": 0.03, "near_duplicate": 0.03, "pdf": 0.01, "image": 0.015, "redirect": 0.015,
    "not_found": 0.015, "legacy_charset": 0.04,
}
# Every kind appears at least this often, so a smoke crawl exercises every filter.
NOISE_MINIMUM = 4
# Extra non-ASCII sentences for pages served in a legacy charset (cp1252 has curly quotes, latin-1 not).
LEGACY_SENTENCES = {
    "windows-1252": "The café next door serves a crème brûlée that regulars call “the best in town” — "
                    "and they’re right, according to the señora who runs it.",
    "iso-8859-1": "The café next door serves a crème brûlée and a piña colada; the naïve señor at the "
                  "counter says both are über-popular.",
}


@dataclass
class Page:
    """One HTTP response of the crawl and what is true about it."""

    url: str
    site: str
    category: str
    language: str | None
    quality: str
    body: bytes = b""
    content_type: str = "text/html"
    charset: str | None = "utf-8"
    status: int = 200
    location: str | None = None
    pii: list[str] = field(default_factory=list)
    nsfw: bool = False
    toxic: bool = False
    junk: bool = False
    contaminated: bool = False
    near_duplicate: bool = False
    duplicate_of: int | None = None  # index of the original page in the crawl plan
    # kept so copies (mirrors, near-duplicates) and re-encodings can be rendered again
    title: str = ""
    paragraphs: list[str] = field(default_factory=list)
    headings: dict[int, str] | None = None
    # host whose boilerplate wraps the page; a scraped copy keeps its source's
    style_host: str | None = None

    @property
    def host(self) -> str:
        return self.url.split("/")[2]


def _html_page(url: str, site: str, category: str, language: str, quality: str, title: str,
               paragraphs: list[str], charset: str = "utf-8", headings: dict[int, str] | None = None,
               **labels) -> Page:
    page = Page(url=url, site=site, category=category, language=language, quality=quality, title=title,
                paragraphs=paragraphs, headings=headings, charset=charset, **labels)
    return _rendered(page)


def _rendered(page: Page) -> Page:
    text = render_html(page.style_host or page.host, page.title, page.paragraphs, page.language or "en", page.charset or "utf-8",
                       page.headings)
    try:
        page.body = text.encode(page.charset or "utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"page {page.url} cannot be encoded as {page.charset}: {err}") from None
    return page


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def _chunks(sentences: list[str], rng: random.Random) -> list[str]:
    """Group sentences into paragraphs of two to four."""
    out, i = [], 0
    while i < len(sentences):
        step = rng.randint(2, 4)
        out.append(" ".join(sentences[i:i + step]))
        i += step
    return out


def _typo(rng: random.Random, text: str) -> str:
    """Forum-style noise: lower case, a swapped or dropped letter here and there."""
    words = text.lower().split()
    for _ in range(max(1, len(words) // 6)):
        i = rng.randrange(len(words))
        w = words[i]
        if len(w) > 3 and w.isalpha():
            j = rng.randrange(len(w) - 1)
            words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:] if rng.random() < 0.6 else w[:j] + w[j + 1:]
    return " ".join(words)


class CrawlPlanner:
    """Builds the list of pages for a world; every random choice comes from one seeded generator."""

    def __init__(self, rng: random.Random, world: World, size: SyntheticSize, benchmark: list[dict]):
        self.rng = rng
        self.world = world
        self.size = size
        self.benchmark = benchmark
        self.pages: list[Page] = []
        self._urls: set[str] = set()

    def _add(self, page: Page) -> int:
        if page.url in self._urls:
            raise ValueError(f"synthetic crawl planned the URL {page.url} twice")
        self._urls.add(page.url)
        self.pages.append(page)
        return len(self.pages) - 1

    def _unique_url(self, base: str) -> str:
        url, n = base, 2
        while url in self._urls:
            url = base.replace(".html", f"-{n}.html") if base.endswith(".html") else f"{base}-{n}"
            n += 1
        return url

    def noise_count(self, kind: str, core: int) -> int:
        return max(NOISE_MINIMUM, round(NOISE_RATES[kind] * core * self.size.noise_scale))

    # --- core pages -------------------------------------------------------------------------------
    def encyclopedia(self) -> list[int]:
        rng, world, out = self.rng, self.world, []
        for person in world.people:
            sentences = person_fact_sentences(rng, person, world, "encyclopedia")
            sentences.insert(0, f"{person.name} is a {person.occupation} from {world.city(person.birth_city).country}.")
            paragraphs = [" ".join(sentences[:2]), " ".join(sentences[2:])]
            out.append(self._add(_html_page(
                f"https://{ENCYCLOPEDIA_HOST}/wiki/{person.name.replace(' ', '_')}", "encyclopedia", "person",
                "en", "high", person.name, paragraphs, headings={1: "Life and career"})))
        for city in world.cities:
            out.append(self._add(_html_page(
                f"https://{ENCYCLOPEDIA_HOST}/wiki/{city.name.replace(' ', '_')}", "encyclopedia", "city", "en",
                "high", city.name, city_sentences(rng, city, world))))
        for company in world.companies:
            out.append(self._add(_html_page(
                f"https://{ENCYCLOPEDIA_HOST}/wiki/{company.name.replace(' ', '_')}", "encyclopedia",
                "company", "en", "high", company.name, company_sentences(rng, company, world))))
        for uni in world.universities:
            out.append(self._add(_html_page(
                f"https://{ENCYCLOPEDIA_HOST}/wiki/{uni.name.replace(' ', '_')}", "encyclopedia",
                "university", "en", "high", uni.name, university_sentences(rng, uni, world))))
        return out

    def news_and_blogs(self) -> list[int]:
        rng, world, out = self.rng, self.world, []
        news_each = max(1, round(5 * self.size.noise_scale))
        blogs_each = max(1, round(3 * self.size.noise_scale))
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
                url = self._unique_url(f"https://{host}/{rng.randint(2019, 2024)}/{rng.randint(1, 12):02d}/"
                                       f"{_slug(title)}.html")
                out.append(self._add(_html_page(url, "news", "news", "en", rng.choice(("high", "medium")),
                                                title, _chunks(sentences, rng))))
            for i in range(blogs_each):
                sentences = person_fact_sentences(rng, person, world, "blog")
                sentences += rng.sample(BLOG_FILLER, 3)
                rng.shuffle(sentences)
                title = rng.choice(blog_titles).format(**slots)
                host = BLOG_HOSTS[(i + len(out)) % len(BLOG_HOSTS)]
                url = self._unique_url(f"https://{host}/posts/{_slug(title)}.html")
                out.append(self._add(_html_page(url, "blog", "blog", "en", rng.choice(("medium", "high")),
                                                title, _chunks(sentences, rng))))
        for company in world.companies:
            title = f"{company.name} reports strong year in {company.industry}"
            sentences = [f"{company.name}, founded in {company.founded}, is headquartered in {company.hq_city}.",
                         f"The {company.industry} firm said demand had grown in every region."]
            sentences += rng.sample(NEWS_FILLER, 3)
            url = self._unique_url(f"https://{rng.choice(NEWS_HOSTS)}/business/{_slug(title)}.html")
            out.append(self._add(_html_page(url, "news", "news", "en", "medium", title, _chunks(sentences, rng))))
        return out

    def forum(self) -> list[int]:
        rng, out = self.rng, []
        threads = max(NOISE_MINIMUM, round(len(self.world.people) * self.size.noise_scale))
        for t in range(threads):
            person = rng.choice(self.world.people)
            topic = rng.choice((f"anyone know where {person.name} works now?",
                                f"{person.name} talk in {person.employer_city} - worth going?",
                                "best coffee place near the station?", "help with my bank transfer",
                                "moving to a new city, tips?"))
            posts, found, headings = [], [], {}
            for p in range(rng.randint(3, 6)):
                user = rng.choice(self.world.people).name
                text = _typo(rng, " ".join(rng.sample(FORUM_CHATTER, 2)))
                if p == 1:  # one clean factual reply per thread
                    text += f" fwiw {person.name} works at {person.employer} in {person.employer_city}."
                roll = rng.random()
                if roll < 0.45:
                    value = pii.email(rng, user)
                    text += f" -- {user.split()[0]} | {value}"
                elif roll < 0.65:
                    value = pii.us_phone(rng)
                    text += f" call or text me at {value}"
                elif roll < 0.8:
                    value = pii.ipv4(rng)
                    text += f" (posted from {value})"
                else:
                    value = ""
                if value:
                    found.append(value)
                if rng.random() < 0.25:
                    kind = rng.choice(("card", "iban", "ssn"))
                    if kind == "card":
                        value = pii.credit_card(rng)
                        text += f" btw my card {value} got charged twice, is that normal??"
                    elif kind == "iban":
                        value = pii.iban(rng)
                        text += f" just send the money to my IBAN {value} thx"
                    else:
                        value = pii.us_ssn(rng)
                        text += f" they asked for my social security number {value} on the phone, scam?"
                    found.append(value)
                headings[p] = f"{user.split()[0].lower()}{rng.randint(1, 99)} wrote:"
                posts.append(text)
            host = FORUM_HOSTS[t % len(FORUM_HOSTS)]
            url = self._unique_url(f"https://{host}/thread/{rng.randint(10000, 99999)}-{_slug(topic)[:40]}")
            out.append(self._add(_html_page(url, "forum", "forum_post", "en", rng.choice(("low", "medium")),
                                            topic, posts, headings=headings, pii=found)))
        return out

    # --- noise pages ------------------------------------------------------------------------------
    def spam(self, count: int) -> None:
        rng = self.rng
        for _ in range(count):
            words = rng.sample(SPAM_KEYWORDS, 4)
            line = " ".join(w.upper() if rng.random() < 0.3 else w for w in words) + "!!!"
            paragraphs = [line] * rng.randint(3, 6) + [", ".join(words * 5)] + [line]
            title = " | ".join(words)
            url = self._unique_url(f"https://{rng.choice(SPAM_HOSTS)}/{_slug(words[0])}-{rng.randint(1, 999)}.html")
            self._add(_html_page(url, "spam", "spam", "en", "low", title.title(), paragraphs))

    def adult(self, count: int) -> None:
        rng = self.rng
        for _ in range(count):
            phrases = rng.sample(NSFW_PHRASES, 5)
            paragraphs = [f"Watch {p} now, 100% free, no signup." for p in phrases[:3]]
            paragraphs += [" ".join(phrases) + " - updated daily with new xxx content.",
                           "You must be 18 or older to enter this adult site."]
            url = self._unique_url(f"https://{rng.choice(ADULT_HOSTS)}/video/{_slug(phrases[0])}-{rng.randint(1, 9999)}")
            self._add(_html_page(url, "adult", "adult", "en", "low", phrases[0].title(), paragraphs, nsfw=True))

    def toxic(self, count: int) -> None:
        rng = self.rng
        for _ in range(count):
            lines = rng.sample(TOXIC_LINES, 3) + [_typo(rng, rng.choice(FORUM_CHATTER))]
            rng.shuffle(lines)
            headings = {i: f"user{rng.randint(100, 999)} wrote:" for i in range(len(lines))}
            url = self._unique_url(f"https://{rng.choice(TOXIC_HOSTS)}/t/{rng.randint(10000, 99999)}")
            self._add(_html_page(url, "toxic", "toxic", "en", "low", "you people are unbelievable", lines,
                                 headings=headings, toxic=True))

    def junk(self, count: int) -> None:
        rng = self.rng
        symbols = "#@!%&*^~|<>{}[]=+$/\\"
        for _ in range(count):
            paragraphs = []
            for _ in range(rng.randint(3, 6)):
                parts = []
                for _ in range(rng.randint(8, 16)):
                    kind = rng.randrange(3)
                    if kind == 0:
                        parts.append("".join(rng.choices(symbols, k=rng.randint(3, 12))))
                    elif kind == 1:
                        parts.append("".join(rng.choices(string.ascii_letters, k=30)))
                    else:
                        parts.append("".join(rng.choices(string.hexdigits.lower(), k=rng.randint(8, 20))))
                paragraphs.append(" ".join(parts))
            url = self._unique_url(f"https://{rng.choice(JUNK_HOSTS)}/blob/{rng.getrandbits(48):012x}")
            self._add(_html_page(url, "junk", "junk", None, "low", "".join(rng.choices(string.hexdigits, k=16)),
                                 paragraphs, junk=True))

    def quiz(self, count: int) -> None:
        rng = self.rng
        per_page = 4
        chosen = rng.sample(range(len(self.benchmark)), min(len(self.benchmark), count * per_page))
        for start in range(0, len(chosen), per_page):
            paragraphs = []
            for number, index in enumerate(chosen[start:start + per_page], start=1):
                item = self.benchmark[index]
                item["contaminated"] = True
                options = " ".join(f"{'ABCD'[i]}) {c}" for i, c in enumerate(item["choices"]))
                paragraphs.append(f"Question {number}: {item['query']} {options} "
                                  f"Answer: {item['choices'][item['gold']]}")
            url = self._unique_url(f"https://{QUIZ_HOSTS[0]}/quiz/famous-people-{rng.randint(100, 9999)}")
            self._add(_html_page(url, "quiz", "quiz", "en", "medium", "Famous people trivia quiz", paragraphs,
                                 contaminated=True))

    def foreign(self, count: int) -> None:
        rng = self.rng
        titles = {"fr": "Portrait : {n}", "de": "Im Porträt: {n}", "es": "Perfil: {n}"}
        for i in range(count):
            language = ("fr", "de", "es")[i % 3]
            person = rng.choice(self.world.people)
            paragraphs = foreign_person_paragraphs(rng, person, language)
            host = FOREIGN_HOSTS[language]
            url = self._unique_url(f"https://{host}/{_slug(person.name)}-{rng.randint(100, 999)}.html")
            charset = "iso-8859-1" if i % 4 == 3 else "utf-8"
            self._add(_html_page(url, "foreign", "news", language, "medium", titles[language].format(n=person.name),
                                 paragraphs, charset=charset))

    def legacy_charset(self, count: int, candidates: list[int]) -> None:
        """Re-serve some English pages in windows-1252 or latin-1 with real non-ASCII text."""
        for n, index in enumerate(self.rng.sample(candidates, min(count, len(candidates)))):
            charset = ("windows-1252", "iso-8859-1")[n % 2]
            page = self.pages[index]
            page.charset = charset
            page.paragraphs = [*page.paragraphs, LEGACY_SENTENCES[charset]]
            _rendered(page)

    def copies(self, mirrors: int, near: int, originals: list[int]) -> list[int]:
        """Exact mirrors (same bytes, other host) and near-duplicates (a few words changed)."""
        rng, out = self.rng, []
        picks = rng.sample(originals, min(len(originals), mirrors + near))
        for n, index in enumerate(picks):
            original = self.pages[index]
            path = original.url.split("/", 3)[3]
            if n < mirrors:
                host = rng.choice(MIRROR_HOSTS)
                copy = replace(original, url=self._unique_url(f"https://{host}/{path}"), site="mirror",
                               duplicate_of=index, near_duplicate=False, pii=list(original.pii))
            else:
                host = REPRINT_HOSTS[0]
                copy = replace(original, url=self._unique_url(f"https://{host}/reprint/{path}"), site="reprint",
                               duplicate_of=index, near_duplicate=True, pii=list(original.pii),
                               paragraphs=_perturb(rng, original.paragraphs), style_host=original.host)
                _rendered(copy)
            out.append(self._add(copy))
        return out

    def non_html(self, pdfs: int, images: int, redirects: int, not_found: int, persons: list[Person]) -> None:
        rng = self.rng
        for _ in range(pdfs):
            company = rng.choice(self.world.companies)
            lines = [f"{company.name} - Annual Report", f"Headquarters: {company.hq_city}",
                     f"Industry: {company.industry}", f"Founded: {company.founded}"]
            url = self._unique_url(f"https://{rng.choice(NEWS_HOSTS)}/reports/{_slug(company.name)}-annual-report.pdf")
            self._add(Page(url=url, site="news", category="pdf", language=None, quality="low",
                           body=media.pdf_document(lines), content_type="application/pdf", charset=None))
        for i in range(images):
            person = rng.choice(persons)
            jpeg = i % 2 == 1
            ext, ctype = ("jpg", "image/jpeg") if jpeg else ("png", "image/png")
            url = self._unique_url(f"https://{ENCYCLOPEDIA_HOST}/static/images/{_slug(person.name)}.{ext}")
            body = media.jpeg_image(rng) if jpeg else media.png_image(rng)
            self._add(Page(url=url, site="encyclopedia", category="image", language=None, quality="low",
                           body=body, content_type=ctype, charset=None))
        for i in range(redirects):
            person = rng.choice(persons)
            target = f"https://{ENCYCLOPEDIA_HOST}/wiki/{person.name.replace(' ', '_')}"
            status = (301, 302)[i % 2]
            url = self._unique_url(f"https://{ENCYCLOPEDIA_HOST}/w/index.php?title={person.name.replace(' ', '_')}")
            body = (f'<html><head><title>Moved</title></head><body><p>This page has moved to '
                    f'<a href="{target}">{target}</a>.</p></body></html>').encode()
            self._add(Page(url=url, site="encyclopedia", category="redirect", language=None, quality="low",
                           body=body, status=status, location=target))
        for _ in range(not_found):
            host = rng.choice((ENCYCLOPEDIA_HOST, *NEWS_HOSTS, *BLOG_HOSTS))
            url = self._unique_url(f"https://{host}/missing/{rng.getrandbits(32):08x}.html")
            body = (b"<!DOCTYPE html><html><head><title>404 Not Found</title></head><body><h1>Not Found</h1>"
                    b"<p>The requested URL was not found on this server.</p></body></html>")
            self._add(Page(url=url, site={ENCYCLOPEDIA_HOST: "encyclopedia"}.get(host, "news" if host in NEWS_HOSTS
                                                                                 else "blog"),
                           category="not_found", language=None, quality="low", body=body, status=404))


# word swaps that keep every fact and the grammar intact
_SWAPS = {"company": "firm", "currently": "presently", "talk": "lecture", "team": "group", "said": "stated",
          "also": "additionally", "city": "town", "Colleagues": "Co-workers"}
_CLOSERS = ("(Reprinted with permission.)", "(First published elsewhere.)", "(Shared by a reader.)")


def _perturb(rng: random.Random, paragraphs: list[str]) -> list[str]:
    """A near copy: a short note after two paragraphs and at most three swapped words."""
    out = list(paragraphs)
    for i in rng.sample(range(len(out)), min(2, len(out))):
        out[i] = f"{out[i]} {rng.choice(_CLOSERS)}"
    words_changed = 0
    for i, text in enumerate(out):
        words = text.split(" ")
        for j, w in enumerate(words):
            if w in _SWAPS and words_changed < 3:
                words[j] = _SWAPS[w]
                words_changed += 1
        out[i] = " ".join(words)
    return out


def plan_crawl(rng: random.Random, world: World, size: SyntheticSize, benchmark: list[dict]) -> list[Page]:
    """All pages in crawl order: originals first (shuffled), then mirrors and near copies (shuffled)."""
    planner = CrawlPlanner(rng, world, size, benchmark)
    encyclopedia = planner.encyclopedia()
    news_blogs = planner.news_and_blogs()
    planner.forum()
    core = len(planner.pages)
    count = lambda kind: planner.noise_count(kind, core)  # noqa: E731
    planner.spam(count("spam"))
    planner.adult(count("adult"))
    planner.toxic(count("toxic"))
    planner.junk(count("junk"))
    planner.quiz(count("quiz"))
    planner.foreign(max(count("foreign"), 6))
    planner.legacy_charset(count("legacy_charset"), news_blogs)
    planner.non_html(count("pdf"), count("image"), count("redirect"), count("not_found"), list(world.people))
    person_pages = [i for i in encyclopedia if planner.pages[i].category == "person"]
    copy_sources = [i for i in person_pages + news_blogs if planner.pages[i].charset == "utf-8"]
    originals_end = len(planner.pages)
    planner.copies(count("mirror"), count("near_duplicate"), copy_sources)

    order = list(range(originals_end))
    rng.shuffle(order)
    tail = list(range(originals_end, len(planner.pages)))
    rng.shuffle(tail)
    order += tail
    position = {old: new for new, old in enumerate(order)}
    pages = [planner.pages[i] for i in order]
    for page in pages:
        if page.duplicate_of is not None:
            page.duplicate_of = position[page.duplicate_of]
    return pages
