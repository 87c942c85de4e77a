"""base_vary: a different phrasing of the user's text on every segment, written by a model.

Pure: the prompt, reading the model's answer, and the rule that keeps a job from ever failing
on it. As the running backend does it, the first segment carries ``base_text`` itself and the
model is asked for one variation per other segment; whatever is missing or unusable becomes
``base_text`` again. The result is stored on the job row before encoding starts, so a retry, a
duplicate or the other backend burns in the very same texts (see ``processor.pipeline``).
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Sequence

from processor.contract import MAX_TEXT_CHARS, Job
from processor.plan import Segment

MODEL = "model"
FALLBACK = "fallback"
# What a caption has room for on a phone screen; the prompt asks for it, the check below does
# not enforce it (a 16-word answer is still a good caption), only the user-text limits.
WORDS_PER_TEXT = 12


class UnusableAnswer(ValueError):
    """The model answered, but not with a list of texts."""


@dataclass(frozen=True)
class TextVariations:
    """The text of every segment, where it came from, and why it is not all the model's."""

    texts: tuple[str, ...]
    source: str  # MODEL: every variation is the model's; FALLBACK: some or all are base_text
    reason: str | None = None

    def to_row(self) -> dict[str, Any]:
        row = {"text_variations": list(self.texts), "text_variations_source": self.source}
        if self.reason:
            row["text_variations_reason"] = self.reason
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "TextVariations | None":
        texts = row.get("text_variations")
        if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
            return None
        return cls(tuple(texts), str(row.get("text_variations_source", FALLBACK)),
                   row.get("text_variations_reason"))

    def fitted(self, count: int, base_text: str) -> "TextVariations":
        """Exactly ``count`` texts: a stored list is reused as it is, padded or trimmed, never regenerated."""
        texts = self.texts[:count] + (base_text,) * max(0, count - len(self.texts))
        return replace(self, texts=texts)


def wants_variations(job: Job, count: int) -> bool:
    """Only base_vary with a base text asks the model, and only when there is a second segment."""
    text = job.text_input
    return (job.text_strategy == "base_vary" and text is not None and bool(text.base_text)
            and bool(text.base_text.strip()) and count > 1)


def build_prompt(base_text: str, wanted: int, context: str | None) -> str:
    """Ask for ``wanted`` distinct phrasings of one message, for captions on short videos.

    The user's text and context are quoted as JSON strings: they are data to rephrase, and a
    quote or a line break in them cannot end the instruction early.
    """
    lines = [
        "You write on-screen captions for short-form social videos (Reels, TikTok, Shorts).",
        f"Write {wanted} different captions that each say the same thing as this base caption:",
        json.dumps(base_text, ensure_ascii=False),
        "",
        "Each caption must:",
        "- keep the base caption's meaning, offer and call to action;",
        "- be phrased clearly differently from the base caption and from the others "
        "(vary the wording, the rhythm and the tone: excited, urgent, friendly, confident);",
        f"- be at most {WORDS_PER_TEXT} words on a single line, in the base caption's language;",
        "- have no numbering, no surrounding quotes and no hashtags.",
    ]
    if context and context.strip():
        lines += ["", "The creator describes the video's purpose and audience as follows; "
                      "match its tone and goal:", json.dumps(context.strip(), ensure_ascii=False)]
    lines += ["", f"Answer with a JSON array of exactly {wanted} strings and nothing else."]
    return "\n".join(lines)


def response_schema() -> dict[str, Any]:
    """The answer's shape, given to the model as its response schema (OpenAPI subset)."""
    return {"type": "ARRAY", "items": {"type": "STRING"}}


def usable(text: Any) -> str | None:
    """A caption that passes the user-text limits: non-blank, one line, no control characters."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    if not text or len(text) > MAX_TEXT_CHARS:
        return None
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in text):
        return None
    return text


def parse_answer(answer: str | None) -> list[str]:
    """The usable captions in the model's answer, in order, without repeats."""
    try:
        items = json.loads(answer or "")
    except ValueError:
        raise UnusableAnswer(f"the answer is not JSON: {(answer or '')[:80]!r}") from None
    if not isinstance(items, list):
        raise UnusableAnswer(f"the answer is not a JSON array but {type(items).__name__}")
    texts: list[str] = []
    for item in items:
        text = usable(item)
        if text is not None and text not in texts:
            texts.append(text)
    return texts


def assemble(base_text: str, count: int, generated: Sequence[str]) -> TextVariations:
    """``base_text`` first, then the model's texts, padded with ``base_text`` to ``count``."""
    wanted = count - 1
    variations = [text for text in generated if text != base_text][:wanted]
    texts = (base_text, *variations, *[base_text] * (wanted - len(variations)))
    if len(variations) == wanted:
        return TextVariations(texts, MODEL)
    return TextVariations(texts, FALLBACK, f"too_few: the model gave {len(variations)} usable "
                                           f"text(s) of the {wanted} asked for; base_text fills the rest")


def fallback(base_text: str, count: int, reason: str) -> TextVariations:
    """Every segment carries ``base_text``, as today's worker does when the model fails."""
    return TextVariations((base_text,) * count, FALLBACK, reason)


def drawable(variations: TextVariations, base_text: str, can_draw: Callable[[str], bool]) -> TextVariations:
    """Texts the caption fonts cannot draw (the model may answer in a script the layer lacks)
    give way to ``base_text``, so that the model's answer never fails the job."""
    texts = tuple(text if can_draw(text) else base_text for text in variations.texts)
    if texts == variations.texts:
        return variations
    refused = sum(1 for old, new in zip(variations.texts, texts) if old != new)
    return TextVariations(texts, FALLBACK, f"undrawable: {refused} of the model's texts had characters no "
                                           f"caption font draws; base_text replaces them")


def apply(segments: Sequence[Segment], variations: TextVariations) -> list[Segment]:
    return [replace(segment, text=text) for segment, text in zip(segments, variations.texts)]
