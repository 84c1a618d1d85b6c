"""LEAF's Shakespeare character vocabulary and FEMNIST class names, as LEAF's reference code defines them.

``ALL_LETTERS`` is copied from LEAF's ``models/utils/language_utils.py`` (TalwalkarLab/leaf):
a character's id is its position in this 80-character string.
"""

from __future__ import annotations

import string

__all__ = ["LETTERS", "FEMNIST_CLASSES"]

LETTERS = "\n !\"&'(),-.0123456789:;>?ABCDEFGHIJKLMNOPQRSTUVWXYZ[]abcdefghijklmnopqrstuvwxyz}"

# FEMNIST (NIST SD19 by_class): labels 0-9 are digits, 10-35 upper case, 36-61 lower case.
FEMNIST_CLASSES = tuple(string.digits + string.ascii_uppercase + string.ascii_lowercase)
