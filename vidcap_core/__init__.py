"""vidcap: video captioning toolkit (frame features, recurrent encoder-decoders, evaluation)."""

__version__ = "0.1.0"
