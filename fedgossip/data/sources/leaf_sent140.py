"""LEAF's Sent140 tweets as hashed bags of words (the input of LEAF's ``bag_log_reg`` baseline).

LEAF writes each sample's ``x`` as the Sentiment140 row without its polarity,
``[tweet id, date, query, user, text]``, and ``y`` as 1 for a positive tweet, 0 for a negative
one. LEAF's bag-of-words model counts the words of ``text`` (split by its ``split_line`` regex)
over a vocabulary of GloVe words, a 400,000-word file fedgossip does not ship. Here a word's
column is instead its CRC-32 modulo :data:`BAG_SIZE` after lower-casing (GloVe's words are lower
case): no vocabulary file, the same column on every machine, and a few colliding words per column.
Each tweet becomes ``BAG_SIZE`` float32 counts, which logreg or mlp read as they are: 4 KB a tweet,
so LEAF's full 1.6 million tweets take 6.5 GB in memory, and its usual ``--sf 0.1`` sample a tenth.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from fedgossip.errors import DataError

__all__ = ["BAG_SIZE", "SENT140_CLASSES", "is_tweet", "tweet_bags"]

BAG_SIZE = 1024
SENT140_CLASSES = ("negative", "positive")
_FIELDS = 5  # tweet id, date, query, user, text
_WORDS = re.compile(r"[\w']+|[.,!?;]")  # LEAF's split_line (models/utils/language_utils.py)


def is_tweet(sample: Any) -> bool:
    """Whether a LEAF sample ``x`` has Sent140's shape: five strings, the text last."""
    return isinstance(sample, list) and len(sample) == _FIELDS and all(isinstance(f, str) for f in sample)


def word_column(word: str) -> int:
    """The bag column of one word: stable across processes, unlike Python's salted ``hash``."""
    return zlib.crc32(word.lower().encode("utf-8")) % BAG_SIZE


def tweet_bags(x: list[Any], y: list[Any], path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Count each tweet's words into ``[n, BAG_SIZE]`` float32 and check the 0/1 labels."""
    bags = np.zeros((len(x), BAG_SIZE), np.float32)
    for i, sample in enumerate(x):
        if not is_tweet(sample):
            raise DataError(
                f"{path}: Sent140 sample {i} must be LEAF's [tweet id, date, query, user, text] "
                f"(five strings), got {str(sample)[:60]}"
            )
        for word in _WORDS.findall(sample[-1]):
            bags[i, word_column(word)] += 1
    if not all(isinstance(label, int) and label in (0, 1) for label in y):
        bad = next(label for label in y if not (isinstance(label, int) and label in (0, 1)))
        raise DataError(f"{path}: Sent140 labels y must be 0 (negative) or 1 (positive), found {bad!r}")
    return bags, np.asarray(y, dtype=np.int64).reshape(len(x))
