"""Vocabulary: words <-> ids, with `<pad>`=0 `<bos>`=1 `<eos>`=2 `<unk>`=3, saved as versioned JSON."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vidcap_core.errors import ConfigError, DatasetError
from vidcap_core.files import atomic_write_text
from vidcap_core.text.tokenizer import tokenize

__all__ = ["Vocabulary", "tokenize"]


class Vocabulary:
    """Ids of the words of training captions. Id order: the four special tokens, then words by
    count (most frequent first), ties in alphabetical order, so the same captions always give
    the same ids."""

    PAD, BOS, EOS, UNK = 0, 1, 2, 3
    SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
    FORMAT_VERSION = 1

    def __init__(self, words: Iterable[str] = (), min_count: int = 1) -> None:
        """`words`: the ordinary words in id order (ids from 4); `min_count` is recorded for reference."""
        self._itos: tuple[str, ...] = (*self.SPECIAL_TOKENS, *words)
        self._stoi: dict[str, int] = {}
        for index, word in enumerate(self._itos):
            if not isinstance(word, str) or not word:
                raise ConfigError(f"Vocabulary entry {index} is {word!r}; every entry must be a non-empty string.")
            if word in self._stoi:
                raise ConfigError(f"Vocabulary entry {index} repeats {word!r} (first at id {self._stoi[word]}).")
            self._stoi[word] = index
        self.min_count = min_count

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 1) -> Vocabulary:
        """Words seen at least `min_count` times in `captions` (after tokenize); the rest map to `<unk>`."""
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ConfigError(f"min_count={min_count!r} must be an integer >= 1.")
        counts = Counter(token for caption in captions for token in tokenize(caption))
        kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls(kept, min_count=min_count)

    def __len__(self) -> int:
        return len(self._itos)

    def __contains__(self, word: object) -> bool:
        return word in self._stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._itos == other._itos

    def __hash__(self) -> int:
        return hash(self._itos)

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens, min_count={self.min_count})"

    @property
    def tokens(self) -> tuple[str, ...]:
        """Every token in id order, specials first."""
        return self._itos

    def index(self, word: str) -> int:
        return self._stoi.get(word, self.UNK)

    def encode(self, text: str, max_words: int | None = None) -> list[int]:
        """`<bos> w1 .. wn <eos>` ids of a caption; `max_words` caps the words (BOS/EOS excluded),
        so the result has at most max_words + 2 ids and always ends with `<eos>`."""
        return self.encode_tokens(tokenize(text), max_words)

    def encode_tokens(self, tokens: Iterable[str], max_words: int | None = None) -> list[int]:
        ids = [self.index(t) for t in tokens]
        if max_words is not None:
            if isinstance(max_words, bool) or not isinstance(max_words, int) or max_words < 0:
                raise ConfigError(f"max_words={max_words!r} must be a non-negative integer (words per caption) or None.")
            ids = ids[:max_words]
        return [self.BOS, *ids, self.EOS]

    def decode_tokens(self, ids: Iterable[int]) -> list[str]:
        """Words of an id sequence: stops at the first `<eos>`, skips `<pad>` and `<bos>`, keeps `<unk>`."""
        words = []
        for raw in ids:
            index = int(raw)  # accepts ints, numpy ints and 0-d tensors
            if index == self.EOS:
                break
            if index in (self.PAD, self.BOS):
                continue
            if not 0 <= index < len(self._itos):
                raise ConfigError(
                    f"Token id {index} is outside this vocabulary of {len(self)} tokens; "
                    "the model and the vocabulary come from different runs."
                )
            words.append(self._itos[index])
        return words

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.decode_tokens(ids))

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.FORMAT_VERSION, "min_count": self.min_count, "tokens": list(self._itos)}

    @classmethod
    def from_dict(cls, data: Any, source: str = "vocabulary") -> Vocabulary:
        """Rebuild from `to_dict()` output; DatasetError naming `source` when it is not one."""
        if not isinstance(data, dict) or "tokens" not in data:
            raise DatasetError(f"{source} is not a vidcap vocabulary: expected an object with 'version' and 'tokens'.")
        if data.get("version") != cls.FORMAT_VERSION:
            raise DatasetError(
                f"{source} has vocabulary format version {data.get('version')!r}; this vidcap reads version "
                f"{cls.FORMAT_VERSION}. Rebuild the vocabulary (retrain) or use the vidcap that wrote it."
            )
        tokens = data["tokens"]
        if not isinstance(tokens, list) or tuple(tokens[: len(cls.SPECIAL_TOKENS)]) != cls.SPECIAL_TOKENS:
            raise DatasetError(f"{source}: 'tokens' must be a list starting with {', '.join(cls.SPECIAL_TOKENS)}.")
        min_count = data.get("min_count", 1)
        try:
            return cls(tokens[len(cls.SPECIAL_TOKENS):], min_count=min_count)
        except ConfigError as exc:
            raise DatasetError(f"{source}: {exc}") from exc

    def save(self, path: Path) -> None:
        """Write JSON atomically (vidcap_core.files: temp file, then rename)."""
        atomic_write_text(Path(path), json.dumps(self.to_dict(), ensure_ascii=False, indent=1))

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise DatasetError(f"Vocabulary file {path} does not exist; pass the vocab.json written by training.") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"Vocabulary file {path} cannot be read: {exc}.") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetError(
                f"Vocabulary file {path} is not valid JSON (line {exc.lineno}: {exc.msg}); it may be truncated — rebuild it."
            ) from exc
        return cls.from_dict(data, source=f"Vocabulary file {path}")
