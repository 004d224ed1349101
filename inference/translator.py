"""MarianMT (opus-mt) as the translator: the describer writes English, the user may read another language.

Only the text shown to a user is translated. The English description stays what the gallery's English-only text
index searches with, so retrieval does not depend on the user's language and one analysis serves every language
(README, "Descriptions in your language", says why this beats prompting LLaVA in Russian).

Marian models are trained on sentence pairs, so a text is split into sentences, the sentences of a whole batch of
texts go through `generate` together (sorted by length, so little padding is computed), and each text is put back
together line by line. Every sentence's input is cut at `max_input_tokens`, and its output at `length_ratio` times
its input: a real model ends a sentence with </s> long before (Russian runs about 1.1-1.3x the English tokens),
the cap only bounds a degenerate one (or a random test model, which never says </s>).
"""

from __future__ import annotations

import math
import re
import threading
from pathlib import Path
from typing import Any

import torch

# A sentence ends at . ! ? or … (with closing quotes or brackets) followed by white space.
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|(?<=[.!?…][\"'»”)\]])\s+")


def split_sentences(line: str) -> list[str]:
    """One line's sentences; abbreviations may split a sentence in two, which costs a little fluency, not meaning."""
    return [sentence for sentence in (part.strip() for part in _SENTENCE_END.split(line)) if sentence]


class MarianTranslator:
    """A MarianMTModel checkpoint and its MarianTokenizer from one directory (or a hub id in the local HF cache)."""

    def __init__(
        self,
        model: str | Path,
        language: str,
        *,
        device: str = "cpu",
        num_beams: int = 4,
        batch_size: int = 16,
        max_input_tokens: int = 256,
        length_ratio: float = 2.0,
        min_new_tokens_cap: int = 8,
    ) -> None:
        self.model = str(model)
        self.language = language
        self.device = device
        self.num_beams = num_beams
        self.batch_size = batch_size
        self.max_input_tokens = max_input_tokens
        self.length_ratio = length_ratio
        self.min_new_tokens_cap = min_new_tokens_cap
        self.name = f"{Path(self.model).name}:beam{num_beams}"
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            from transformers import MarianMTModel, MarianTokenizer

            tokenizer = MarianTokenizer.from_pretrained(self.model)
            model = MarianMTModel.from_pretrained(self.model)
            model.to(self.device)  # type: ignore[arg-type]  # transformers' stubs drop `self` from .to()
            model.eval()
            self._tokenizer = tokenizer
            self._model = model

    def translate(self, texts: list[str]) -> list[str]:
        """English texts to `language`, same order; line breaks are kept, empty lines stay empty."""
        if not texts:
            return []
        self.load()
        layouts = [[split_sentences(line) for line in text.split("\n")] for text in texts]
        sentences = list(dict.fromkeys(s for lines in layouts for line in lines for s in line))
        translated = dict(zip(sentences, self.translate_sentences(sentences), strict=True))
        return [
            "\n".join(" ".join(translated[sentence] for sentence in line) for line in lines).strip()
            for lines in layouts
        ]

    def translate_sentences(self, sentences: list[str]) -> list[str]:
        """Sentences in, translations out, `batch_size` per `generate` call, shortest first."""
        if not sentences:
            return []
        self.load()
        tokenizer = self._tokenizer
        lengths = [
            len(ids) for ids in tokenizer(sentences, truncation=True, max_length=self.max_input_tokens).input_ids
        ]
        order = sorted(range(len(sentences)), key=lengths.__getitem__)
        out: list[str] = [""] * len(sentences)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            inputs = tokenizer(
                [sentences[i] for i in chunk],
                truncation=True,
                max_length=self.max_input_tokens,
                padding=True,
                return_tensors="pt",
            ).to(self.device)
            caps = [self.output_cap(lengths[i]) for i in chunk]
            with torch.inference_mode():
                generated = self._model.generate(
                    **inputs, num_beams=self.num_beams, do_sample=False, max_new_tokens=max(caps)
                )
            # Each sentence keeps at most its own cap (+1: the decoder's start token), so its translation does not
            # depend on the longer sentences it happened to share a batch with.
            rows = [row[: cap + 1] for row, cap in zip(generated, caps, strict=True)]
            for i, text in zip(chunk, tokenizer.batch_decode(rows, skip_special_tokens=True), strict=True):
                out[i] = text.strip()
        return out

    def output_cap(self, input_tokens: int) -> int:
        """Most tokens a sentence of `input_tokens` may translate into."""
        return max(self.min_new_tokens_cap, math.ceil(self.length_ratio * input_tokens))
