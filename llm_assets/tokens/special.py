"""Special tokens and the chat format shared by the tokenizer, pre-training shards and fine-tuning.

A conversation renders as one block per message:

    <|user|>\\n{content}<|end|>\\n<|assistant|>\\n{content}<|end|>\\n

and a generation prompt is `<|assistant|>\\n`. `CHAT_TEMPLATE` (Jinja, for Hugging Face
`apply_chat_template`) and `render_chat` (plain Python) produce the same text.

Only the template's own markers become special ids: `render_chat` returns a `MarkedText` that knows which
of its pieces are markers, and `llm_assets.tokens.tokenizer` encodes every other piece (message content) as
ordinary text, special-token text included. Hugging Face's `apply_chat_template` cannot tell them apart in
the rendered string, so `CHAT_TEMPLATE` refuses content that holds special-token text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

ENDOFTEXT = "<|endoftext|>"  # document boundary; the end-of-document (EOT) token of the shards
USER = "<|user|>"
ASSISTANT = "<|assistant|>"
SYSTEM = "<|system|>"
END_OF_TURN = "<|end|>"
PAD = "<|pad|>"

# Order fixes the ids: the tokenizer trainer assigns 0, 1, 2, ... in this order.
SPECIAL_TOKENS: tuple[str, ...] = (ENDOFTEXT, USER, ASSISTANT, END_OF_TURN, PAD, SYSTEM)

ROLES: dict[str, str] = {"user": USER, "assistant": ASSISTANT, "system": SYSTEM}
GENERATION_PROMPT = ASSISTANT + "\n"

# Jinja string literals understand "\n", so the template needs no whitespace control tricks.
# transformers tokenizes the rendered string with special tokens parsed, so content that spells one is refused
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] not in ['user', 'assistant', 'system'] -%}"
    "{{ raise_exception('unknown chat role: ' + message['role']) }}"
    "{%- endif -%}"
    "{%- for token in " + repr(list(SPECIAL_TOKENS)) + " -%}"
    "{%- if token in message['content'] -%}"
    "{{ raise_exception('chat message content holds the special-token text ' + token + '; this template "
    "would turn it into a control token. Tokenize such content with split_special_tokens=True instead') }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|assistant|>\\n' }}{%- endif -%}"
)


def _message_parts(messages: Iterable[Mapping[str, str]]) -> list[tuple[str, str]]:
    parts = []
    for position, message in enumerate(messages):
        role = message.get("role")
        content = message.get("content")
        if not isinstance(role, str) or role not in ROLES:
            raise ValueError(f"chat message {position}: unknown role {role!r}; use one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise ValueError(f"chat message {position} ({role}): content must be a string, got "
                             f"{type(content).__name__}")
        parts.append((role, content))
    return parts


def special_token_text(text: str) -> list[str]:
    """The special tokens whose text occurs in `text` (content that would spell a control token)."""
    return [token for token in SPECIAL_TOKENS if token in text]


def _merged(pieces: Iterable[tuple[str, bool]]) -> tuple[tuple[str, bool], ...]:
    """Pieces with empty text dropped and neighbouring plain pieces joined (they encode as one run)."""
    out: list[tuple[str, bool]] = []
    for text, marker in pieces:
        if not text:
            continue
        if not marker and out and not out[-1][1]:
            out[-1] = (out[-1][0] + text, False)
        else:
            out.append((text, bool(marker)))
    return tuple(out)


class MarkedText(str):
    """Rendered chat text that knows its template markers: `pieces` is `(text, is_marker)` in order.

    It is the rendered string (compare, hash, print and store it as one), and the encoder turns only the
    marker pieces into special ids. Appending plain text and `rstrip` keep the marks; any other str
    operation returns a plain str, which is encoded as ordinary text throughout.
    """

    pieces: tuple[tuple[str, bool], ...]

    def __new__(cls, pieces: Iterable[tuple[str, bool]]):
        merged = _merged(pieces)
        self = super().__new__(cls, "".join(text for text, _ in merged))
        self.pieces = merged
        return self

    def __getnewargs__(self):
        return (self.pieces,)

    def __add__(self, other):
        if isinstance(other, MarkedText):
            return MarkedText(self.pieces + other.pieces)
        if isinstance(other, str):
            return MarkedText((*self.pieces, (other, False)))
        return NotImplemented

    def __radd__(self, other):
        if isinstance(other, str):
            return MarkedText(((other, False), *self.pieces))
        return NotImplemented

    def __eq__(self, other):
        if isinstance(other, MarkedText):
            return self.pieces == other.pieces
        return str.__eq__(self, other)

    def __ne__(self, other):
        return not self == other

    __hash__ = str.__hash__

    def rstrip(self, chars: str | None = None) -> MarkedText:
        """Trailing characters of the plain pieces stripped; a marker is never cut into."""
        pieces = list(self.pieces)
        while pieces and not pieces[-1][1]:
            kept = pieces[-1][0].rstrip(chars)
            if kept:
                pieces[-1] = (kept, False)
                break
            pieces.pop()
        return MarkedText(pieces)


def chat_pieces(messages: Iterable[Mapping[str, str]], add_generation_prompt: bool = False
                ) -> list[tuple[str, bool]]:
    """The conversation as `(text, is_marker)` pieces: role headers and `<|end|>` are markers, the rest text."""
    pieces: list[tuple[str, bool]] = []
    for role, content in _message_parts(messages):
        pieces += [(ROLES[role], True), ("\n" + content, False), (END_OF_TURN, True), ("\n", False)]
    if add_generation_prompt:
        pieces += [(ASSISTANT, True), ("\n", False)]
    return pieces


def render_chat(messages: Iterable[Mapping[str, str]], add_generation_prompt: bool = False) -> MarkedText:
    """The conversation as text, exactly as `CHAT_TEMPLATE` renders it, with its markers known."""
    return MarkedText(chat_pieces(messages, add_generation_prompt))


def assistant_spans(messages: Iterable[Mapping[str, str]], include_end: bool = True) -> list[tuple[int, int]]:
    """Character spans `[start, end)` of assistant contents in `render_chat(messages)`, for loss masking.

    With `include_end` the span also covers the `<|end|>` that closes the turn, so a model fine-tuned
    on these spans learns to stop; the header `<|assistant|>\\n` is never inside a span.
    """
    spans = []
    position = 0
    for role, content in _message_parts(messages):
        start = position + len(ROLES[role]) + 1
        end = start + len(content)
        if role == "assistant":
            spans.append((start, end + len(END_OF_TURN) if include_end else end))
        position = end + len(END_OF_TURN) + 1
    return spans
