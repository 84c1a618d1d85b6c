"""The Python API behind ``import fedgossip as fg`` (see :mod:`fedgossip` for the names)."""
