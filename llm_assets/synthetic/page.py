"""One page of the synthetic web (`Page`), the plan that collects pages, and how a page's HTML and URL are made.

`pages.plan_crawl` fills a `CrawlPlan` with the core pages (`pages`) and the noise pages (`noise_pages`); every
random choice comes from the plan's one seeded generator, so the same seed gives the same crawl.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from llm_assets.profiles import SyntheticSize
from llm_assets.synthetic.sites import render_html
from llm_assets.synthetic.world import World


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


class CrawlPlan:
    """The pages planned so far for a world, in plan order, with their URLs kept unique."""

    def __init__(self, rng: random.Random, world: World, size: SyntheticSize, benchmark: list[dict]):
        self.rng = rng
        self.world = world
        self.size = size
        self.benchmark = benchmark
        self.pages: list[Page] = []
        self._urls: set[str] = set()

    def add(self, page: Page) -> int:
        """Append `page`; returns its index in the plan."""
        if page.url in self._urls:
            raise ValueError(f"synthetic crawl planned the URL {page.url} twice")
        self._urls.add(page.url)
        self.pages.append(page)
        return len(self.pages) - 1

    def unique_url(self, base: str) -> str:
        """`base`, or `base` with `-2`, `-3`, ... added when an earlier page holds it."""
        url, n = base, 2
        while url in self._urls:
            url = base.replace(".html", f"-{n}.html") if base.endswith(".html") else f"{base}-{n}"
            n += 1
        return url


def html_page(url: str, site: str, category: str, language: str, quality: str, title: str,
              paragraphs: list[str], charset: str = "utf-8", headings: dict[int, str] | None = None,
              **labels) -> Page:
    """A rendered HTML page; `labels` are further `Page` fields (pii, nsfw, toxic, ...)."""
    page = Page(url=url, site=site, category=category, language=language, quality=quality, title=title,
                paragraphs=paragraphs, headings=headings, charset=charset, **labels)
    return rendered(page)


def rendered(page: Page) -> Page:
    """`page` with its body rendered again from its title and paragraphs, in its charset."""
    text = render_html(page.style_host or page.host, page.title, page.paragraphs, page.language or "en",
                       page.charset or "utf-8", page.headings)
    try:
        page.body = text.encode(page.charset or "utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"page {page.url} cannot be encoded as {page.charset}: {err}") from None
    return page


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def chunks(sentences: list[str], rng: random.Random) -> list[str]:
    """Group sentences into paragraphs of two to four."""
    out, i = [], 0
    while i < len(sentences):
        step = rng.randint(2, 4)
        out.append(" ".join(sentences[i:i + step]))
        i += step
    return out


def typo(rng: random.Random, text: str) -> str:
    """Forum-style noise: lower case, a swapped or dropped letter here and there."""
    words = text.lower().split()
    for _ in range(max(1, len(words) // 6)):
        i = rng.randrange(len(words))
        w = words[i]
        if len(w) > 3 and w.isalpha():
            j = rng.randrange(len(w) - 1)
            words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:] if rng.random() < 0.6 else w[:j] + w[j + 1:]
    return " ".join(words)
