"""The run lifecycle: plan -> node -> engine (rounds | interactions) -> records.

:func:`fedgossip.run.engine.run_training` is the entry point; a :class:`~fedgossip.run.node.Node`
holds one device's state and the schedules drive it.
"""
