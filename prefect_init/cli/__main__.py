"""``python -m prefect_init.cli``: the same as the ``prefect-init`` command."""

from prefect_init.cli import main

main()
