"""The ``wait`` step: one checker interface (:mod:`.targets`), one module per target kind, one wait loop
(:mod:`.loop`)."""
