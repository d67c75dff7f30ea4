"""Package discovery that cannot miss a subpackage (the rest of the metadata is in pyproject.toml).

The one import name is ``prefect_init``; its ``tasks`` and ``flows`` subpackages live in the top-level ``tasks/``
and ``flows/`` folders. setuptools' own discovery (``find_packages``) walks each of the three trees, so a new
subpackage anywhere is shipped without editing a list: a hand-kept list once left ``prefect_init.kinds.wait.targets``
out of the wheel, and every ``wait`` step crashed in any image.
"""

from setuptools import find_packages, setup

MAPPED = {"prefect_init.tasks": "tasks", "prefect_init.flows": "flows"}


def discover() -> list[str]:
    packages = find_packages(include=["prefect_init", "prefect_init.*"])
    for name, folder in MAPPED.items():
        packages += [name] + [f"{name}.{sub}" for sub in find_packages(where=folder)]
    return sorted(packages)


setup(packages=discover(), package_dir=MAPPED)
