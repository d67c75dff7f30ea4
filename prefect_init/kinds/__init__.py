"""The step kinds: the logic of each, importable without prefect.

Each kind is a module (or a package, for ``wait`` and ``migrate``) that defines ``Step`` (its part of the spec, a
pydantic model), ``run(step, ctx)``, which does the work of one attempt and returns a short summary or raises a
:mod:`prefect_init.errors` error, and optionally ``probe(step, ctx)`` for ``check --online``. The kinds are
listed in :mod:`prefect_init.spec.registry`.
"""
