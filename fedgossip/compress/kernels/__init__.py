"""Compiled inner loops of the quantizers (numba), imported only by ranks that quantize.

numba takes about a quarter of a second to import and each kernel a moment to
compile the first time (then it is cached beside the source), so the compressor
classes import these modules lazily: a run with ``--compressor none`` never pays.
"""
