"""Heuristic rule families (Gopher, C4, FineWeb): each one small class that returns a drop reason or None.

Calling a family on a text returns `None` to keep the document or a reason such as
`gopher_quality:mean_word_length`. Thresholds default to the published values (Gopher: Rae et al. 2021; C4:
Raffel et al. 2020; FineWeb: Penedo et al. 2024) and live in `HeuristicThresholds` (in `profiles`, with the
other settings, so an override is checked when the configuration is loaded);
`CurationConfig.heuristic_overrides` replaces any of them by name.
"""

from __future__ import annotations

import logging
import re
from collections import Counter

import numpy as np

from llm_assets.profiles import HeuristicThresholds

log = logging.getLogger(__name__)

STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
BULLETS = ("•", "●", "○", "▪", "◦", "-", "*", "–", "—", "·", "‣", "⁃")
ELLIPSES = ("...", "…")
C4_TERMINAL = (".", "?", "!", '"', "”")
LINE_TERMINAL = (".", "?", "!", '"', "'", "”", "’", "…", ")", ":", ";")
POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies",
                  "use cookies")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_LINE_BREAK = re.compile(r"\n+")
_ALPHA = re.compile(r"[^\W\d_]")
_WORD_CHAR = re.compile(r"\w")
_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")


def apply_heuristics(texts: list[str], t: HeuristicThresholds) -> tuple[list[str | None], list[str]]:
    """Reason (or None) and C4-cleaned text per document; families run in Gopher, C4, FineWeb order
    and the first reason wins. The Gopher and FineWeb rules see the text before C4's line clean-up."""
    gopher_quality, gopher_repetition = GopherQuality(t), GopherRepetition(t)
    c4, fineweb = C4Rules(t), FineWebRules(t)
    reasons: list[str | None] = []
    cleaned: list[str] = []
    for i, text in enumerate(texts):
        reason = gopher_quality(text) or gopher_repetition(text)
        c4_reason, c4_text = c4.clean(text) if reason is None else (None, text)
        reason = reason or c4_reason or fineweb(text)
        reasons.append(reason)
        cleaned.append(c4_text)
        if (i + 1) % 20_000 == 0:
            log.info("quality heuristics: %d / %d documents", i + 1, len(texts))
    return reasons, cleaned


class GopherQuality:
    """Document shape: length, word length, symbols, bullets, ellipses, alphabetic words, stop words."""

    name = "gopher_quality"

    def __init__(self, t: HeuristicThresholds):
        self.t = t

    def __call__(self, text: str) -> str | None:
        t = self.t
        words = _words(text)
        content_words = [w for w in words if _WORD_CHAR.search(w)]
        n = len(content_words)
        if n < t.min_words:
            return f"{self.name}:too_few_words"
        if n > t.max_words:
            return f"{self.name}:too_many_words"
        mean_length = sum(len(w) for w in content_words) / n
        if not t.min_mean_word_length <= mean_length <= t.max_mean_word_length:
            return f"{self.name}:mean_word_length"
        symbols = text.count("#") + sum(text.count(e) for e in ELLIPSES)
        if symbols / n > t.max_symbol_word_ratio:
            return f"{self.name}:symbol_word_ratio"
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if lines and sum(line.startswith(BULLETS) for line in lines) / len(lines) > t.max_bullet_lines_ratio:
            return f"{self.name}:bullet_lines"
        if lines and sum(line.endswith(ELLIPSES) for line in lines) / len(lines) > t.max_ellipsis_lines_ratio:
            return f"{self.name}:ellipsis_lines"
        if sum(bool(_ALPHA.search(w)) for w in words) / max(len(words), 1) < t.min_alpha_words_ratio:
            return f"{self.name}:alpha_words"
        if sum(w.lower().strip(".,;:!?\"'()") in STOP_WORDS for w in words) < t.min_stop_words:
            return f"{self.name}:stop_words"
        return None


class GopherRepetition:
    """Repeated lines, paragraphs and word n-grams, by count and by share of characters."""

    name = "gopher_repetition"

    def __init__(self, t: HeuristicThresholds):
        self.t = t

    def __call__(self, text: str) -> str | None:
        t = self.t
        text = text.strip()
        if not text:
            return f"{self.name}:empty"
        paragraphs = _PARAGRAPH_BREAK.split(text)
        count, chars = _duplicates(paragraphs)
        if count / len(paragraphs) > t.max_dup_paragraph_ratio:
            return f"{self.name}:dup_paragraph_ratio"
        if chars / len(text) > t.max_dup_paragraph_char_ratio:
            return f"{self.name}:dup_paragraph_char_ratio"
        lines = _LINE_BREAK.split(text)
        count, chars = _duplicates(lines)
        if count / len(lines) > t.max_dup_line_ratio:
            return f"{self.name}:dup_line_ratio"
        if chars / len(text) > t.max_dup_line_char_ratio:
            return f"{self.name}:dup_line_char_ratio"
        words = _words(text)
        word_chars = sum(len(w) for w in words) or 1
        for n, limit in t.max_top_ngram_char_ratio:
            if len(words) < n:
                continue
            ngrams = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
            top, top_count = ngrams.most_common(1)[0]
            if top_count > 1 and sum(len(w) for w in top) * top_count / word_chars > limit:
                return f"{self.name}:top_{n}gram_char_ratio"
        for n, limit in t.max_dup_ngram_char_ratio:
            if self._duplicated_ngram_chars(words, n) / word_chars > limit:
                return f"{self.name}:dup_{n}gram_char_ratio"
        return None

    @staticmethod
    def _duplicated_ngram_chars(words: list[str], n: int) -> int:
        """Characters of words covered by n-grams seen earlier (each word counted once)."""
        seen: set[tuple[str, ...]] = set()
        covered = np.zeros(len(words), dtype=bool)
        for i in range(len(words) - n + 1):
            gram = tuple(words[i:i + n])
            if gram in seen:
                covered[i:i + n] = True
            else:
                seen.add(gram)
        if not covered.any():
            return 0
        return sum(len(w) for w, c in zip(words, covered, strict=True) if c)


class C4Rules:
    """C4's clean-up: drops javascript, policy, short and unterminated lines; drops the document for
    lorem ipsum, curly brackets, or too few sentences left. Returns `(reason, cleaned_text)`."""

    name = "c4"

    def __init__(self, t: HeuristicThresholds):
        self.t = t

    def clean(self, text: str) -> tuple[str | None, str]:
        t = self.t
        lowered = text.lower()
        if "lorem ipsum" in lowered:
            return f"{self.name}:lorem_ipsum", text
        if "{" in text:
            return f"{self.name}:curly_bracket", text
        kept = []
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            lower_line = line.lower()
            words = line.split()
            if "javascript" in lower_line or any(p in lower_line for p in POLICY_PHRASES):
                continue
            if t.c4_drop_lines_without_terminal_punct and not line.endswith(C4_TERMINAL):
                continue
            if len(words) < t.c4_min_words_per_line:
                continue
            if max(len(w) for w in words) > t.c4_max_word_length:
                continue
            kept.append(line)
        cleaned = "\n".join(kept)
        if not kept:
            return f"{self.name}:no_lines_left", cleaned
        if len(_SENTENCE_END.findall(cleaned)) < t.c4_min_sentences:
            return f"{self.name}:too_few_sentences", cleaned
        return None, cleaned

    def __call__(self, text: str) -> str | None:
        return self.clean(text)[0]


class FineWebRules:
    """FineWeb's additions: share of lines with terminal punctuation, short lines, duplicated-line
    characters, and newlines per word (lists)."""

    name = "fineweb"

    def __init__(self, t: HeuristicThresholds):
        self.t = t

    def __call__(self, text: str) -> str | None:
        t = self.t
        lines = [line for line in text.split("\n") if line.strip()]
        if not lines:
            return f"{self.name}:empty"
        if sum(line.endswith(LINE_TERMINAL) for line in lines) / len(lines) < t.min_line_punct_ratio:
            return f"{self.name}:line_punct_ratio"
        if sum(len(line) <= t.short_line_length for line in lines) / len(lines) > t.max_short_line_ratio:
            return f"{self.name}:short_line_ratio"
        if _duplicates(lines)[1] / max(len(text.replace("\n", "")), 1) > t.max_dup_line_char_share:
            return f"{self.name}:char_dup_ratio"
        if text.count("\n") / max(len(_words(text)), 1) > t.max_newline_word_ratio:
            return f"{self.name}:list_ratio"
        return None


def _words(text: str) -> list[str]:
    return text.split()


def _duplicates(items: list[str]) -> tuple[int, int]:
    """(count, characters) of items that already occurred earlier in the list."""
    seen: set[str] = set()
    count = chars = 0
    for item in items:
        if item in seen:
            count += 1
            chars += len(item)
        else:
            seen.add(item)
    return count, chars

