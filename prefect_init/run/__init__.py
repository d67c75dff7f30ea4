"""The run: the engine (one scheduler, one retry loop), the outcome (status file, termination log), the
reporters on stderr, the pod's identity, and the preflight runner of ``check --online``.

It calls the step kinds through the registry; it never imports prefect.
"""
