"""Every prefect-init step kind as a plain Prefect task, for your own flows.

.. code-block:: python

    from prefect import flow
    from prefect_init.tasks.command import run_command
    from prefect_init.tasks.files import ensure_files

    @flow
    def prepare():
        ensure_files({"dirs": [{"path": "/data/uploads", "mode": "0775"}]})
        run_command(["npm", "run", "build"], cwd="/repo")

Tasks do not persist results and take no secret as a parameter: secrets are read from files at run time.
"""
