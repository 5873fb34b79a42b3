"""The noise of the synthetic web: pages each filter must remove, and copies deduplication must find.

Spam, adult, toxic and junk pages; quiz pages that leak benchmark answers; foreign-language pages; pages
re-served in a legacy charset; PDFs, images, redirects and 404s; exact mirrors and near-duplicate reprints.
Each function adds its pages to the `CrawlPlan`, drawing from the plan's generator in a fixed order.
"""

from __future__ import annotations

import random
import string
from dataclasses import replace

from llm_assets.synthetic import media
from llm_assets.synthetic.page import CrawlPlan, Page, html_page, rendered, slug, typo
from llm_assets.synthetic.prose import foreign_person_paragraphs
from llm_assets.synthetic.sites import (
    ADULT_HOSTS,
    BLOG_HOSTS,
    ENCYCLOPEDIA_HOST,
    FOREIGN_HOSTS,
    JUNK_HOSTS,
    MIRROR_HOSTS,
    NEWS_HOSTS,
    QUIZ_HOSTS,
    REPRINT_HOSTS,
    SPAM_HOSTS,
    TOXIC_HOSTS,
)
from llm_assets.synthetic.vocab import FORUM_CHATTER, NSFW_PHRASES, SPAM_KEYWORDS, TOXIC_LINES
from llm_assets.synthetic.world import Person

# Extra non-ASCII sentences for pages served in a legacy charset (cp1252 has curly quotes, latin-1 not).
LEGACY_SENTENCES = {
    "windows-1252": "The café next door serves a crème brûlée that regulars call “the best in town” — "
                    "and they’re right, according to the señora who runs it.",
    "iso-8859-1": "The café next door serves a crème brûlée and a piña colada; the naïve señor at the "
                  "counter says both are über-popular.",
}


def spam_pages(plan: CrawlPlan, count: int) -> None:
    """Keyword-stuffed pages repeating the same shouted line."""
    rng = plan.rng
    for _ in range(count):
        words = rng.sample(SPAM_KEYWORDS, 4)
        line = " ".join(w.upper() if rng.random() < 0.3 else w for w in words) + "!!!"
        paragraphs = [line] * rng.randint(3, 6) + [", ".join(words * 5)] + [line]
        title = " | ".join(words)
        url = plan.unique_url(f"https://{rng.choice(SPAM_HOSTS)}/{slug(words[0])}-{rng.randint(1, 999)}.html")
        plan.add(html_page(url, "spam", "spam", "en", "low", title.title(), paragraphs))


def adult_pages(plan: CrawlPlan, count: int) -> None:
    """Adult-site landing pages, labelled `nsfw`."""
    rng = plan.rng
    for _ in range(count):
        phrases = rng.sample(NSFW_PHRASES, 5)
        paragraphs = [f"Watch {p} now, 100% free, no signup." for p in phrases[:3]]
        paragraphs += [" ".join(phrases) + " - updated daily with new xxx content.",
                       "You must be 18 or older to enter this adult site."]
        url = plan.unique_url(f"https://{rng.choice(ADULT_HOSTS)}/video/{slug(phrases[0])}-{rng.randint(1, 9999)}")
        plan.add(html_page(url, "adult", "adult", "en", "low", phrases[0].title(), paragraphs, nsfw=True))


def toxic_pages(plan: CrawlPlan, count: int) -> None:
    """Abusive forum threads, labelled `toxic`."""
    rng = plan.rng
    for _ in range(count):
        lines = rng.sample(TOXIC_LINES, 3) + [typo(rng, rng.choice(FORUM_CHATTER))]
        rng.shuffle(lines)
        headings = {i: f"user{rng.randint(100, 999)} wrote:" for i in range(len(lines))}
        url = plan.unique_url(f"https://{rng.choice(TOXIC_HOSTS)}/t/{rng.randint(10000, 99999)}")
        plan.add(html_page(url, "toxic", "toxic", "en", "low", "you people are unbelievable", lines,
                           headings=headings, toxic=True))


def junk_pages(plan: CrawlPlan, count: int) -> None:
    """Pages of symbols, random letters and hex strings, labelled `junk`."""
    rng = plan.rng
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
        url = plan.unique_url(f"https://{rng.choice(JUNK_HOSTS)}/blob/{rng.getrandbits(48):012x}")
        plan.add(html_page(url, "junk", "junk", None, "low", "".join(rng.choices(string.hexdigits, k=16)),
                           paragraphs, junk=True))


def quiz_pages(plan: CrawlPlan, count: int) -> None:
    """Quiz pages quoting benchmark items with their answers: the contamination decontamination must find.
    Marks the quoted items `contaminated`."""
    rng = plan.rng
    per_page = 4
    chosen = rng.sample(range(len(plan.benchmark)), min(len(plan.benchmark), count * per_page))
    for start in range(0, len(chosen), per_page):
        paragraphs = []
        for number, index in enumerate(chosen[start:start + per_page], start=1):
            item = plan.benchmark[index]
            item["contaminated"] = True
            options = " ".join(f"{'ABCD'[i]}) {c}" for i, c in enumerate(item["choices"]))
            paragraphs.append(f"Question {number}: {item['query']} {options} "
                              f"Answer: {item['choices'][item['gold']]}")
        url = plan.unique_url(f"https://{QUIZ_HOSTS[0]}/quiz/famous-people-{rng.randint(100, 9999)}")
        plan.add(html_page(url, "quiz", "quiz", "en", "medium", "Famous people trivia quiz", paragraphs,
                           contaminated=True))


def foreign_pages(plan: CrawlPlan, count: int) -> None:
    """French, German and Spanish portraits of people; every fourth one in latin-1."""
    rng = plan.rng
    titles = {"fr": "Portrait : {n}", "de": "Im Porträt: {n}", "es": "Perfil: {n}"}
    for i in range(count):
        language = ("fr", "de", "es")[i % 3]
        person = rng.choice(plan.world.people)
        paragraphs = foreign_person_paragraphs(rng, person, language)
        host = FOREIGN_HOSTS[language]
        url = plan.unique_url(f"https://{host}/{slug(person.name)}-{rng.randint(100, 999)}.html")
        charset = "iso-8859-1" if i % 4 == 3 else "utf-8"
        plan.add(html_page(url, "foreign", "news", language, "medium", titles[language].format(n=person.name),
                           paragraphs, charset=charset))


def legacy_charset_pages(plan: CrawlPlan, count: int, candidates: list[int]) -> None:
    """Re-serve some English pages in windows-1252 or latin-1 with real non-ASCII text."""
    for n, index in enumerate(plan.rng.sample(candidates, min(count, len(candidates)))):
        charset = ("windows-1252", "iso-8859-1")[n % 2]
        page = plan.pages[index]
        page.charset = charset
        page.paragraphs = [*page.paragraphs, LEGACY_SENTENCES[charset]]
        rendered(page)


def copy_pages(plan: CrawlPlan, mirrors: int, near: int, originals: list[int]) -> list[int]:
    """Exact mirrors (same bytes, other host) and near-duplicates (a few words changed)."""
    rng, out = plan.rng, []
    picks = rng.sample(originals, min(len(originals), mirrors + near))
    for n, index in enumerate(picks):
        original = plan.pages[index]
        path = original.url.split("/", 3)[3]
        if n < mirrors:
            host = rng.choice(MIRROR_HOSTS)
            copy = replace(original, url=plan.unique_url(f"https://{host}/{path}"), site="mirror",
                           duplicate_of=index, near_duplicate=False, pii=list(original.pii))
        else:
            host = REPRINT_HOSTS[0]
            copy = replace(original, url=plan.unique_url(f"https://{host}/reprint/{path}"), site="reprint",
                           duplicate_of=index, near_duplicate=True, pii=list(original.pii),
                           paragraphs=_perturb(rng, original.paragraphs), style_host=original.host)
            rendered(copy)
        out.append(plan.add(copy))
    return out


def non_html_pages(plan: CrawlPlan, pdfs: int, images: int, redirects: int, not_found: int,
                   persons: list[Person]) -> None:
    """PDF reports, PNG and JPEG images, redirects and 404 pages: responses that hold no text to extract."""
    rng = plan.rng
    for _ in range(pdfs):
        company = rng.choice(plan.world.companies)
        lines = [f"{company.name} - Annual Report", f"Headquarters: {company.hq_city}",
                 f"Industry: {company.industry}", f"Founded: {company.founded}"]
        url = plan.unique_url(f"https://{rng.choice(NEWS_HOSTS)}/reports/{slug(company.name)}-annual-report.pdf")
        plan.add(Page(url=url, site="news", category="pdf", language=None, quality="low",
                      body=media.pdf_document(lines), content_type="application/pdf", charset=None))
    for i in range(images):
        person = rng.choice(persons)
        jpeg = i % 2 == 1
        ext, ctype = ("jpg", "image/jpeg") if jpeg else ("png", "image/png")
        url = plan.unique_url(f"https://{ENCYCLOPEDIA_HOST}/static/images/{slug(person.name)}.{ext}")
        body = media.jpeg_image(rng) if jpeg else media.png_image(rng)
        plan.add(Page(url=url, site="encyclopedia", category="image", language=None, quality="low",
                      body=body, content_type=ctype, charset=None))
    for i in range(redirects):
        person = rng.choice(persons)
        target = f"https://{ENCYCLOPEDIA_HOST}/wiki/{person.name.replace(' ', '_')}"
        status = (301, 302)[i % 2]
        url = plan.unique_url(f"https://{ENCYCLOPEDIA_HOST}/w/index.php?title={person.name.replace(' ', '_')}")
        body = (f'<html><head><title>Moved</title></head><body><p>This page has moved to '
                f'<a href="{target}">{target}</a>.</p></body></html>').encode()
        plan.add(Page(url=url, site="encyclopedia", category="redirect", language=None, quality="low",
                      body=body, status=status, location=target))
    for _ in range(not_found):
        host = rng.choice((ENCYCLOPEDIA_HOST, *NEWS_HOSTS, *BLOG_HOSTS))
        url = plan.unique_url(f"https://{host}/missing/{rng.getrandbits(32):08x}.html")
        body = (b"<!DOCTYPE html><html><head><title>404 Not Found</title></head><body><h1>Not Found</h1>"
                b"<p>The requested URL was not found on this server.</p></body></html>")
        plan.add(Page(url=url, site={ENCYCLOPEDIA_HOST: "encyclopedia"}.get(host, "news" if host in NEWS_HOSTS
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
