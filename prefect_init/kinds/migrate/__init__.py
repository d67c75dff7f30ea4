"""Migrations, whole: the ``migrate`` step (:mod:`.step`), the history table and its lock (:mod:`.history`),
adopting Flyway's table (:mod:`.flyway`), ``prefect-init migrations`` (:mod:`.status`) and the ``migrations``
wait target (:mod:`.target`)."""
