"""FineWeb's additions to the Gopher and C4 rules (Penedo et al. 2024)."""

from __future__ import annotations

from llm_assets.profiles import HeuristicThresholds

from .base import TextFilter, duplicates, word_list

LINE_TERMINAL = (".", "?", "!", '"', "'", "”", "’", "…", ")", ":", ";")


class FineWebRules(TextFilter):
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
        if duplicates(lines)[1] / max(len(text.replace("\n", "")), 1) > t.max_dup_line_char_share:
            return f"{self.name}:char_dup_ratio"
        if text.count("\n") / max(len(word_list(text)), 1) > t.max_newline_word_ratio:
            return f"{self.name}:list_ratio"
        return None
