"""One build of both images for every pod test (a build takes minutes on two cores)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.helpers import source_snapshot
from tests.pods.images import Images, build, podman


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Images]:
    context = source_snapshot(tmp_path_factory.mktemp("context"))
    built = build(context, f"t{uuid.uuid4().hex[:6]}")
    try:
        yield built
    finally:
        podman("rmi", "-f", built.worker, built.init, check=False)
