"""Run settings: the frozen ``TrainConfig`` and the spec parsers it uses, free of torch and MPI.

Every spec is parsed here once, into the typed objects of :class:`~fedgossip.settings.run_specs.RunSpecs`;
nothing in this package imports from the layers above it (run, local, comm, algorithms).
"""
