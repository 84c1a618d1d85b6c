"""Rich rendering for the terminal: the only package that draws.

The library below ``cli`` never prints; the CLI calls these functions with the
objects the library returns.
"""
