"""Special tokens and the chat format shared by the tokenizer, pre-training shards and fine-tuning.

A conversation renders as one block per message:

    <|user|>\\n{content}<|end|>\\n<|assistant|>\\n{content}<|end|>\\n

and a generation prompt is `<|assistant|>\\n`. `CHAT_TEMPLATE` (Jinja, for Hugging Face
`apply_chat_template`) and `render_chat` (plain Python) produce the same text.
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
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] not in ['user', 'assistant', 'system'] -%}"
    "{{ raise_exception('unknown chat role: ' + message['role']) }}"
    "{%- endif -%}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|assistant|>\\n' }}{%- endif -%}"
)


def _message_parts(messages: Iterable[Mapping[str, str]]) -> list[tuple[str, str]]:
    parts = []
    for position, message in enumerate(messages):
        role = message.get("role")
        content = message.get("content")
        if role not in ROLES:
            raise ValueError(f"chat message {position}: unknown role {role!r}; use one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise ValueError(f"chat message {position} ({role}): content must be a string, got "
                             f"{type(content).__name__}")
        parts.append((role, content))
    return parts


def render_chat(messages: Iterable[Mapping[str, str]], add_generation_prompt: bool = False) -> str:
    """The conversation as text, exactly as `CHAT_TEMPLATE` renders it."""
    text = "".join(f"{ROLES[role]}\n{content}{END_OF_TURN}\n" for role, content in _message_parts(messages))
    return text + GENERATION_PROMPT if add_generation_prompt else text


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
