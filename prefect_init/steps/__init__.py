"""The logic of each step kind, importable without prefect.

Each module defines ``Step`` (its part of the spec, a pydantic model) and ``run(step, ctx)``, which does the work
of one attempt and returns a short summary or raises a :mod:`prefect_init.errors` error.
"""
