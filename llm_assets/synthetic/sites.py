"""The hosts of the synthetic web and their boilerplate (identical lines on every page of a host)."""

from __future__ import annotations

import html
import zlib
from dataclasses import dataclass

ENCYCLOPEDIA_HOST = "www.wikiverse.org"
NEWS_HOSTS = ("www.dailymeridian.com", "www.globetribune.net", "news.northwire.org")
BLOG_HOSTS = ("www.pagesandpeople.net", "blog.lanternhouse.io", "www.slowcoffeenotes.com")
FORUM_HOSTS = ("boards.citychatter.net", "www.opentalk-forum.com")
SPAM_HOSTS = ("www.best-cheap-deals-online.biz", "www.top10-discount-offers.info")
ADULT_HOSTS = ("www.hotxxxcams.com", "www.freeporntube-videos.net")
TOXIC_HOSTS = ("www.ragetalk.net",)
JUNK_HOSTS = ("cdn-7f3a.datastore-cache.net", "static.trk-feed.xyz")
QUIZ_HOSTS = ("www.triviahub-quiz.com",)
FOREIGN_HOSTS = {"fr": "www.actualites-monde.fr", "de": "www.nachrichten-welt.de",
                 "es": "www.noticias-del-mundo.es"}
MIRROR_HOSTS = ("www.wikiverse-mirror.net", "www.knowledgecopy.org")
REPRINT_HOSTS = ("www.newsreprint-daily.com",)

_SERVERS = ("nginx/1.24.0", "Apache/2.4.58 (Ubuntu)", "cloudflare", "nginx", "Microsoft-IIS/10.0",
            "LiteSpeed", "openresty/1.25.3.1")


def server_for(host: str) -> str:
    # crc32, not hash(): stable across processes
    return _SERVERS[zlib.crc32(host.encode()) % len(_SERVERS)]


@dataclass(frozen=True)
class SiteStyle:
    """How one host wraps its content: these lines repeat verbatim on every page of the host."""

    brand: str
    nav: tuple[str, ...]
    sidebar: tuple[str, ...] = ()
    footer: tuple[str, ...] = ()
    cookie_banner: str = ""


_STYLES: dict[str, SiteStyle] = {
    ENCYCLOPEDIA_HOST: SiteStyle(
        brand="Wikiverse, the free encyclopedia",
        nav=("Main page", "Contents", "Current events", "Random article", "About Wikiverse", "Donate"),
        sidebar=("Tools", "What links here", "Related changes", "Permanent link", "Page information",
                 "Cite this page", "Download as PDF"),
        footer=("Text is available under the Creative Commons Attribution-ShareAlike License; additional "
                "terms may apply.",
                "Wikiverse is a registered trademark of the Wikiverse Foundation, a non-profit organization.",
                "Privacy policy | About Wikiverse | Disclaimers | Contact Wikiverse | Mobile view"),
        cookie_banner="We use cookies to improve your experience on Wikiverse. By continuing to browse the "
                      "site you agree to our use of cookies.",
    ),
}
for _host, _brand in zip(NEWS_HOSTS, ("The Daily Meridian", "Global Tribune", "Northwire News"), strict=True):
    _STYLES[_host] = SiteStyle(
        brand=_brand, nav=("Home", "World", "Business", "Science", "Culture", "Opinion", "Subscribe"),
        sidebar=("Most read", "Newsletter: get the morning briefing in your inbox"),
        footer=(f"(c) 2024 {_brand}. All rights reserved.", "Terms of use | Privacy | Advertise with us"),
        cookie_banner=f"{_brand} uses cookies and similar technologies. Accept all cookies?")
for _host, _brand in zip(BLOG_HOSTS, ("Pages and People", "Lantern House", "Slow Coffee Notes"), strict=True):
    _STYLES[_host] = SiteStyle(
        brand=_brand, nav=("Home", "About me", "Archive", "Contact"),
        sidebar=("Subscribe via RSS", "Categories: people, travel, ideas"),
        footer=(f"Powered by a small static site generator. {_brand} (c) 2024.",))


def style_for(host: str) -> SiteStyle:
    if host in _STYLES:
        return _STYLES[host]
    name = host.removeprefix("www.").split(".")[0].replace("-", " ").title()
    return SiteStyle(brand=name, nav=("Home", "Latest", "Popular", "About"),
                     footer=(f"(c) 2024 {name}", "Contact | Privacy"))


def render_html(host: str, title: str, paragraphs: list[str], language: str, charset: str,
                headings: dict[int, str] | None = None) -> str:
    """A full HTML page: the host's boilerplate around `title` and `paragraphs` (plain text, escaped here).

    `headings` maps a paragraph index to a sub-heading placed before it.
    """
    style = style_for(host)
    esc = lambda s: html.escape(s, quote=False)  # noqa: E731
    lines = ["<!DOCTYPE html>", f'<html lang="{language}">', "<head>", f'<meta charset="{charset}">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{esc(title)} - {esc(style.brand)}</title>", "</head>", "<body>"]
    if style.cookie_banner:
        lines.append(f'<div class="cookie-banner">{esc(style.cookie_banner)} <button>Accept</button></div>')
    lines.append(f'<header><a class="logo" href="/">{esc(style.brand)}</a></header>')
    lines.append("<nav><ul>")
    lines += [f'<li><a href="/{item.lower().replace(" ", "-")}">{esc(item)}</a></li>' for item in style.nav]
    lines.append("</ul></nav>")
    if style.sidebar:
        lines.append('<aside class="sidebar">')
        lines += [f"<p>{esc(item)}</p>" for item in style.sidebar]
        lines.append("</aside>")
    lines += ["<main>", "<article>", f"<h1>{esc(title)}</h1>"]
    for i, paragraph in enumerate(paragraphs):
        if headings and i in headings:
            lines.append(f"<h2>{esc(headings[i])}</h2>")
        lines.append(f"<p>{esc(paragraph)}</p>")
    lines += ["</article>", "</main>"]
    if style.footer:
        lines.append("<footer>")
        lines += [f"<p>{esc(item)}</p>" for item in style.footer]
        lines.append("</footer>")
    lines += ["</body>", "</html>", ""]
    return "\n".join(lines)
