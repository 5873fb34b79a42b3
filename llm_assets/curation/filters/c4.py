"""C4's rules (Raffel et al. 2020): its line clean-up, and the pages it drops."""

from __future__ import annotations

import re

import polars as pl

from llm_assets.profiles import HeuristicThresholds

from .base import TextFilter

C4_TERMINAL = (".", "?", "!", '"', "”")
POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies",
                  "use cookies")
_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")


class C4Rules(TextFilter):
    """C4's clean-up: drops javascript, policy, short and unterminated lines; drops the document for
    lorem ipsum, curly brackets, or too few sentences left. `clean(text)` returns `(reason, cleaned_text)`."""

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

    def cleaned(self, docs: pl.DataFrame) -> pl.Series:
        """`text` after C4's line clean-up, per row: what a page that passes the quality stage keeps."""
        return pl.Series("text", [self.clean(text)[1] for text in docs["text"].fill_null("").to_list()],
                         dtype=pl.Utf8)
