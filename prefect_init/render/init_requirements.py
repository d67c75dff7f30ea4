"""The init image's requirements: a wheel's ``Requires-Dist`` (extras left out) but the distributions named.

Run as a file, with the standard library only (it runs in the image's build stage, before anything is installed):

    python prefect_init/render/init_requirements.py WHEEL_DIR prefect prefect-kubernetes > requirements.txt
"""

from __future__ import annotations

import email
import re
import sys
import zipfile
from pathlib import Path


def requirements(wheel: Path, leave_out: set[str]) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(archive.read(name))
    out = []
    for requirement in metadata.get_all("Requires-Dist") or []:
        if ";" in requirement:  # an extra's, or for another platform
            continue
        project = re.split(r"[^A-Za-z0-9_.-]", requirement, maxsplit=1)[0]
        if re.sub(r"[-_.]+", "-", project).lower() not in leave_out:
            out.append(requirement)
    return out


def main(argv: list[str]) -> int:
    wheels = sorted(Path(argv[0]).glob("prefect_init-*.whl"))
    if len(wheels) != 1:
        print(f"init_requirements: expected one prefect_init wheel in {argv[0]}, found {len(wheels)}", file=sys.stderr)
        return 2
    print("\n".join(requirements(wheels[0], {name.lower() for name in argv[1:]})))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
