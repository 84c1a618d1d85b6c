"""Single-process training: models, the flat parameter vector, optimizers, local steps, evaluation.

Nothing here talks to other ranks; the algorithms in :mod:`fedgossip.algorithms`
exchange the flat vector that :class:`fedgossip.local.flat.FlatParameters` exposes.
"""
