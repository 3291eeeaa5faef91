"""tokenize() against pycocoevalcap's PTBTokenizer (real Java), and the Vocabulary contract."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from vidcap_core.errors import ConfigError, DatasetError
from vidcap_core.text import PTB_PUNCTUATIONS, Vocabulary, tokenize

# Captions as they come in MSR-VTT / MSVD / user files, with the punctuation, clitics, quotes,
# brackets, symbols, unicode and spacing that PTBTokenizer treats specially.
TRICKY_CAPTIONS = [
    "A man is playing a guitar.",
    "a woman doesn't like it's cat's toy, isn't it?",
    "The kids (two of them) are running -- fast!",
    'He said "hello" to \'the\' world...',
    "A T-shirt costs $5.99 at 3:30 p.m. in the U.S.",
    "A dog & a cat: friends; forever!!",
    "Someone is slicing an onion/tomato.",
    "A café serves naïve crème brûlée — yum",
    "It’s a “quoted” thing ‘single’",
    "A man   with   spaces\ttab",
    "1,000 people watch 2.5 hours",
    "we'll they're I'm you've she'd can't won't gonna wanna",
    "{braces} [brackets]",
    "An e-mail @ home 50% off *star* +plus =eq ~tilde ^caret |pipe \\back",
    "the end .",
    "Mr. Smith vs. Mrs. Jones etc.",
    "o'clock rock'n'roll ma'am y'all",
    "a dog's bowl . the dogs' bowls",
    "?!? ... -- - ,,",
    "emoji 😀 test",
    "a man is cooking.a woman is eating",
    "the dr. is in . Dr. Who",
    "a girl -- talks-to a boy - and - more",
    "x-ray 3-d well-known -hyphen trailing- dash",
    "cannot gotta lemme dunno gimme",
    "'quoted at start' and end'",
    '"double" and \'\'two singles\'\' ``backticks``',
    "e.g. i.e. a.m. U.S.A. U.K. N.Y.",
    "St. Louis Mt. Everest Jr. Inc. Co. Ltd. No. 5",
    "a b/c d/e/f 1/2 and/or",
    "50°C © ™ ® § ± × ÷ € £ ¥ ¢ ½",
    "A : B ; C ! D ? E",
    "!!! ??? !? ?!",
    "I am;happy:yes,no",
    "the 2nd and 3rd men 1st",
    "a Man’s WORLD ALLCAPS CamelCase",
    "he--she",
    "don't. DON'T Don’t",
    "cafés naïve Ünïcödé ßtraße İstanbul",
    "mother-in-law's hat and ex-wife's car",
    "a (b) c [d] e {f} )(][}{",
    "a b - c and end with dash-",
    "a photo of plan b. here am i.",
    "the answer is no. no. 5 is here",
    "wait.. really.... yes . . .",
    "en – dash and … ellipsis",
    "a 3.5-inch screen 10-year-old",
    '"hello," she said. \'ok.\'',
    "ALL CAPS SENTENCE!",
    "it'd've ain't y'know o'neil d'angelo",
    "the dogs' toys; cats'",
    "the boss is mr. and he is 5. she is 2. okay",
    "prof. x corp. ave. sr. gov. sen. gen. capt. lt. col. rev. ft. jan. feb. aug. sept.",
    "dept. of st. louis, fig. 1 vol. 2",
    "he has 2 cats.the end",
    "a man and a woman ( talking )",
    "zero\u200bwidth and\u00a0nbsp",
    "line one\nline two",
    "  leading and trailing spaces  ",
    "",
    "a",
    # Already-tokenized text (a decoded prediction) must come out unchanged.
    "a woman does n't like it 's cat 's toy is n't it",
    "we 'll they 're i 'm you 've she 'd ca n't wo n't gon na wan na",
    "the kids -lrb- two of them -rrb- are running fast",
    "rock 'n' roll and u.s. and mr. smith",
]


def ptb_tokenize(captions: list[str]) -> list[str]:
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    out = PTBTokenizer().tokenize({i: [{"caption": c}] for i, c in enumerate(captions)})
    return [out[i][0] for i in range(len(captions))]


@pytest.mark.skipif(shutil.which("java") is None, reason="PTBTokenizer needs Java (apt-get install default-jre-headless)")
def test_tokenize_matches_pycocoevalcap_ptbtokenizer() -> None:
    expected = ptb_tokenize(TRICKY_CAPTIONS)
    mismatches = [(c, e, " ".join(tokenize(c))) for c, e in zip(TRICKY_CAPTIONS, expected) if " ".join(tokenize(c)) != e]
    assert mismatches == []


def test_tokenize_examples() -> None:
    """The rules, spelled out (runs without Java)."""
    assert tokenize("A man is playing a guitar.") == ["a", "man", "is", "playing", "a", "guitar"]
    assert tokenize("It’s the dog's toy, isn't it?") == ["it", "'s", "the", "dog", "'s", "toy", "is", "n't", "it"]
    assert tokenize("A T-shirt costs $5.99 in the U.S.") == ["a", "t-shirt", "costs", "$", "5.99", "in", "the", "u.s."]
    assert tokenize("kids (two) -- fast!!") == ["kids", "-lrb-", "two", "-rrb-", "fast", "!!"]
    assert tokenize("emoji 😀 café") == ["emoji", "café"]
    assert tokenize("") == [] and tokenize(" . , ; : ! ? ... -- ") == []
    caption = "It’s a “quoted” (tricky) caption—isn't it?"
    assert tokenize(" ".join(tokenize(caption))) == tokenize(caption)  # idempotent
    assert not any(t in PTB_PUNCTUATIONS for c in TRICKY_CAPTIONS for t in tokenize(c))


# ---------------------------------------------------------------- Vocabulary

CAPTIONS = [
    "A man is playing a guitar.",
    "a man is cooking",
    "A dog runs.",
    "a dog is barking at a man",
    "zebra",
]


def test_special_ids_and_build_order() -> None:
    assert (Vocabulary.PAD, Vocabulary.BOS, Vocabulary.EOS, Vocabulary.UNK) == (0, 1, 2, 3)
    vocab = Vocabulary.build(CAPTIONS)
    # counts: a 6, man 3, is 3, dog 2, then singletons alphabetically
    assert vocab.tokens == ("<pad>", "<bos>", "<eos>", "<unk>", "a", "is", "man", "dog",
                            "at", "barking", "cooking", "guitar", "playing", "runs", "zebra")
    assert len(vocab) == 15
    assert Vocabulary.build(reversed(CAPTIONS)) == vocab  # caption order does not change ids
    frequent = Vocabulary.build(CAPTIONS, min_count=2)
    assert frequent.tokens[4:] == ("a", "is", "man", "dog") and frequent.min_count == 2
    assert "zebra" not in frequent and frequent.index("zebra") == Vocabulary.UNK
    with pytest.raises(ConfigError, match="min_count=0"):
        Vocabulary.build(CAPTIONS, min_count=0)


def test_encode_decode() -> None:
    vocab = Vocabulary.build(CAPTIONS, min_count=2)
    ids = vocab.encode("A dog is playing.")
    assert ids == [1, vocab.index("a"), vocab.index("dog"), vocab.index("is"), Vocabulary.UNK, 2]
    assert vocab.decode(ids) == "a dog is <unk>"
    assert vocab.encode("a dog is a man", max_words=2) == [1, vocab.index("a"), vocab.index("dog"), 2]  # keeps EOS
    assert vocab.encode("a dog", max_words=0) == [1, 2]
    assert len(vocab.encode("a " * 50, max_words=20)) == 22
    assert vocab.encode("") == [1, 2] and vocab.decode([1, 2]) == ""
    padded = [1, vocab.index("man"), 0, vocab.index("is"), 2, vocab.index("dog"), 0, 0]
    assert vocab.decode(padded) == "man is"  # stops at EOS, skips PAD and BOS
    assert vocab.decode(np.array(padded, dtype=np.int64)) == "man is"
    assert vocab.decode_tokens([1, vocab.index("man"), 2]) == ["man"]
    with pytest.raises(ConfigError, match="Token id 99 is outside this vocabulary of 8 tokens"):
        vocab.decode([1, 99, 2])
    with pytest.raises(ConfigError, match="max_words=-1"):
        vocab.encode("a", max_words=-1)


def test_round_trip_and_atomic_save(tmp_path: Path) -> None:
    vocab = Vocabulary.build(CAPTIONS + ["crème brûlée"], min_count=1)
    path = tmp_path / "run" / "vocab.json"
    vocab.save(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["vocab.json"]  # no temp file left
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["version"] == 1 and data["tokens"][:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    loaded = Vocabulary.load(path)
    assert loaded == vocab and loaded.encode("crème brûlée") == vocab.encode("crème brûlée")
    assert Vocabulary.from_dict(vocab.to_dict()) == vocab
    vocab.save(path)  # overwriting keeps one file
    assert sorted(p.name for p in path.parent.iterdir()) == ["vocab.json"]


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "vocab.json"
    with pytest.raises(DatasetError, match=rf"Vocabulary file {path} does not exist"):
        Vocabulary.load(path)
    path.write_text('{"version": 1, "tokens": ["<pad>", ', encoding="utf-8")
    with pytest.raises(DatasetError, match=rf"Vocabulary file {path} is not valid JSON"):
        Vocabulary.load(path)
    path.write_text(json.dumps({"version": 2, "tokens": ["<pad>", "<bos>", "<eos>", "<unk>"]}), encoding="utf-8")
    with pytest.raises(DatasetError, match=rf"{path} has vocabulary format version 2; this vidcap reads version 1"):
        Vocabulary.load(path)
    path.write_text(json.dumps({"version": 1, "tokens": ["a", "b"]}), encoding="utf-8")
    with pytest.raises(DatasetError, match=rf"{path}: 'tokens' must be a list starting with <pad>"):
        Vocabulary.load(path)
    path.write_text(json.dumps({"version": 1, "tokens": ["<pad>", "<bos>", "<eos>", "<unk>", "a", "a"]}), encoding="utf-8")
    with pytest.raises(DatasetError, match=rf"{path}: .*repeats 'a'"):
        Vocabulary.load(path)
    path.write_text(json.dumps(["not", "a", "vocabulary"]), encoding="utf-8")
    with pytest.raises(DatasetError, match=rf"{path} is not a vidcap vocabulary"):
        Vocabulary.load(path)
