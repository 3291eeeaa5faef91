"""Caption text: the PTB-consistent tokenizer and the Vocabulary."""

from vidcap_core.text.tokenizer import PTB_PUNCTUATIONS, tokenize
from vidcap_core.text.vocab import Vocabulary

__all__ = ["PTB_PUNCTUATIONS", "Vocabulary", "tokenize"]
