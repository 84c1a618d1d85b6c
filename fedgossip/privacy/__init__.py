"""Differential privacy: mechanisms (``--dp``) and the accounting of what they spend."""
