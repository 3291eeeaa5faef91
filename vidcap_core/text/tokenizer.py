"""A pure-Python tokenizer that reproduces pycocoevalcap's PTBTokenizer on captions.

pycocoevalcap scores captions after running Stanford's PTBTokenizer (`-preserveLines -lowerCase`)
and dropping the tokens in its PUNCTUATIONS list. Training on the same tokens means the words a
model learns are the words it is scored on, without starting Java for every caption. The rules:

- lower-case; curly quotes become straight ones, en/em dashes `--`, `…` `...`, `€` `$`, `£` `#`,
  `¢` `cents`, `½ ¼ ¾` `1/2 1/4 3/4`; characters outside the Basic Multilingual Plane (emoji),
  which PTBTokenizer cannot tokenize, and zero-width spaces separate tokens;
- words keep inner hyphens, slashes, dots and `@` (`t-shirt`, `onion/tomato`, `www.a.com`),
  digit groups keep `,` and `:` (`1,000`, `3:30`); acronyms and initials keep their dots
  (`u.s.`, `p.m.`, `b.`), and so do common abbreviations (`mr.`, `st.`, `etc.`, `no.` before a number);
- clitics split off: `do n't`, `ca n't`, `it 's`, `we 're`, `you 've`, `she 'd`, `i 'm`, `they 'll`,
  `can not`, `gon na`, `wan na`, `got ta`, `gim me`, `lem me`, `y' all`, `rock 'n' roll`;
- every other symbol is a token of its own (`$ 5`, `50 %`, `a & b`); runs of `!`/`?` stay one token
  (`!!`), runs of dots are `...`; brackets become `-lrb- -rrb- -lsb- -rsb- -lcb- -rcb-` — lower-cased,
  so pycocoevalcap's upper-case `-LRB-` entry never removes them, and neither do we;
- the PUNCTUATIONS tokens are dropped.

Text that is already tokenized (`it 's`, `do n't`, `-lrb-`) comes out unchanged, as it does from
PTBTokenizer, so decoded captions are scored on the tokens the model produced.

Known differences from PTBTokenizer (rare in captions): numbers glued to letters (`1.5million`,
`v1.2`), `#hashtags`, `<tags>`, HTML entities (`&amp;`), URLs with `?`/`=`, `AT&T`-style
upper-case `&` words, `'tis`, `'90s`, `5'10`, a hyphen after a clitic (`dog's-life`), and
abbreviations beyond the list below. tests/test_vocab.py checks agreement on a batch of captions.
"""

from __future__ import annotations

import re

# pycocoevalcap.tokenizer.ptbtokenizer.PUNCTUATIONS, verbatim.
PTB_PUNCTUATIONS = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)

_CHAR_MAP = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u2013": " -- ", "\u2014": " -- ", "\u2015": " -- ",
    "\u2026": " ... ",
    "\u20ac": " $ ", "\u00a3": " # ", "\u00a2": " cents ",
    "\u00bd": " 1/2 ", "\u00bc": " 1/4 ", "\u00be": " 3/4 ",
    "\u200b": " ", "\u200c": " ", "\u200d": " ", "\ufeff": " ", "\u00a0": " ",
})
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")

_SYMBOL_TOKENS = {'"': "''", "(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-"}
_ABBREVIATIONS = (
    "mr|mrs|ms|dr|prof|st|mt|jr|sr|gov|sen|gen|capt|lt|col|rev|ft|dept|fig|vs|etc|inc|corp|co|ltd|ave|"
    "jan|feb|aug|sept|mon"
)
_CHAR = r"[\w\u0300-\u036f]"  # word characters, with combining accents (NFD text, the dot of i̇)
_LETTER = r"[^\W\d_]"

_TOKEN = re.compile(
    rf"""
    (?P<clitic>(?<!\w)'(?:s|re|ll|ve|d|m|n')(?!\w))                 # 's 'll 'n' on their own (tokenized text)
  | (?P<escaped>(?<![\w-])-(?:lrb|rrb|lsb|rsb|lcb|rcb)-(?![\w-]))  # PTB's own bracket tokens
  | (?P<acronym>(?<!\w)(?:{_LETTER}\.)+(?!\w))                      # u.s.  p.m.  e.g.  b.
  | (?P<abbrev>(?<!\w)(?:(?:{_ABBREVIATIONS})\.(?!\w)|no\.(?=\s*\d)))  # mr.  st.  no. 5
  | (?P<word>{_CHAR}+(?:(?:[-./@]|(?<=\d)[,:](?=\d)|'(?={_LETTER})){_CHAR}+)*)
  | (?P<dots>\.{{2,}})
  | (?P<marks>[!?]+)
  | (?P<dashes>-{{2,}})
  | (?P<other>\S)
    """,
    re.VERBOSE,
)
_CLITIC = re.compile(r"^(.+?)(n't|'s|'re|'ll|'ve|'d|'m)$")
_WHOLE_WORD_SPLITS = {
    "cannot": ("can", "not"),
    "gonna": ("gon", "na"),
    "gotta": ("got", "ta"),
    "wanna": ("wan", "na"),
    "gimme": ("gim", "me"),
    "lemme": ("lem", "me"),
}


def tokenize(text: str) -> list[str]:
    """PTB-style tokens of one caption, lower-cased, punctuation removed (pycocoevalcap's tokens)."""
    text = _ASTRAL.sub(" ", text.translate(_CHAR_MAP)).lower()
    tokens: list[str] = []
    for match in _TOKEN.finditer(text):
        kind, token = match.lastgroup, match.group()
        if kind == "word":
            tokens.extend(_split_word(token))
        elif kind == "dots":
            tokens.append("...")
        elif kind == "dashes":
            tokens.append("--")
        else:
            tokens.append(_SYMBOL_TOKENS.get(token, token))
    return [t for t in tokens if t not in PTB_PUNCTUATIONS]


def _split_word(word: str) -> list[str]:
    """Split clitics off one word: `don't` -> `do n't`, `it'd've` -> `it 'd 've`."""
    if "'" not in word and word not in _WHOLE_WORD_SPLITS:  # the common case
        return [word]
    if word in _WHOLE_WORD_SPLITS:
        return list(_WHOLE_WORD_SPLITS[word])
    if word.startswith("y'") and len(word) > 2:
        return ["y'", *_split_word(word[2:])]
    if "'n'" in word:
        head, _, tail = word.partition("'n'")
        return [*(_split_word(head) if head else []), "'n'", *(_split_word(tail) if tail else [])]
    suffixes: list[str] = []
    match = _CLITIC.match(word)
    while match:
        word = match.group(1)
        suffixes.insert(0, match.group(2))
        match = _CLITIC.match(word)
    return [word, *suffixes]
