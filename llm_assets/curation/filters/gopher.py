"""Gopher's quality and repetition rules (Rae et al. 2021), at the thresholds of `HeuristicThresholds`."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from llm_assets.profiles import HeuristicThresholds

from .base import TextFilter, duplicates, word_list

STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
BULLETS = ("•", "●", "○", "▪", "◦", "-", "*", "–", "—", "·", "‣", "⁃")
ELLIPSES = ("...", "…")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_LINE_BREAK = re.compile(r"\n+")
_ALPHA = re.compile(r"[^\W\d_]")
_WORD_CHAR = re.compile(r"\w")


class GopherQuality(TextFilter):
    """Document shape: length, word length, symbols, bullets, ellipses, alphabetic words, stop words."""

    name = "gopher_quality"

    def __init__(self, t: HeuristicThresholds):
        self.t = t

    def __call__(self, text: str) -> str | None:
        t = self.t
        words = word_list(text)
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


class GopherRepetition(TextFilter):
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
        count, chars = duplicates(paragraphs)
        if count / len(paragraphs) > t.max_dup_paragraph_ratio:
            return f"{self.name}:dup_paragraph_ratio"
        if chars / len(text) > t.max_dup_paragraph_char_ratio:
            return f"{self.name}:dup_paragraph_char_ratio"
        lines = _LINE_BREAK.split(text)
        count, chars = duplicates(lines)
        if count / len(lines) > t.max_dup_line_ratio:
            return f"{self.name}:dup_line_ratio"
        if chars / len(text) > t.max_dup_line_char_ratio:
            return f"{self.name}:dup_line_char_ratio"
        words = word_list(text)
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
