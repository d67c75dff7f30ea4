"""What the init image has to run a command step with, and the Dockerfile lines for an image that has more.

The init image (``deployments/Dockerfile``, target ``init``, written by :mod:`prefect_init.render.dockerfile`) is
``python:3.11-slim-bookworm`` plus the Debian packages its ``apt-get install`` line names. The programs of that
base are listed here once, from Debian bookworm's essential and required packages (what ``debian:bookworm-slim``
holds) and what the python image adds; the programs of the installed packages are read from the Dockerfile's
own ``apt-get install`` line, so a package dropped there is reported missing here.
"""

from __future__ import annotations

import re

from prefect_init import __version__
from prefect_init.render.dockerfile import BASE_IMAGE, dockerfile
from prefect_init.render.pod import UID

BASE_PROGRAMS = frozenset("""
sh dash bash rbash
arch b2sum base32 base64 basename cat chcon chgrp chmod chown chroot cksum comm cp csplit cut date dd df dir
dircolors dirname du echo env expand expr factor false fmt fold groups head hostid id install join link ln logname
ls md5sum mkdir mkfifo mknod mktemp mv nice nl nohup nproc numfmt od paste pathchk pinky pr printenv printf ptx pwd
readlink realpath rm rmdir runcon seq sha1sum sha224sum sha256sum sha384sum sha512sum shred shuf sleep sort split
stat stdbuf stty sum sync tac tail tee test [ timeout touch tr true truncate tsort tty uname unexpand uniq unlink
users vdir wc who whoami yes
find xargs grep egrep fgrep sed awk mawk tar gzip gunzip zcat zgrep diff cmp diff3 sdiff
hostname getent ldd iconv locale su login newgrp mount umount useradd userdel usermod groupadd groupdel chpasswd
passwd more flock getopt setsid nsenter unshare runuser rev kill logger renice script which run-parts tempfile
tput clear perl apt apt-get dpkg
python python3 pip pip3 openssl update-ca-certificates prefect-init
""".split())  # noqa: SIM905 - a list to read and edit as words
"""The programs of the base image, ``python:3.11-slim-bookworm``: Debian's essential and required packages
(bash, dash, coreutils, findutils, grep, sed, mawk, tar, gzip, diffutils, hostname, libc-bin, login, passwd,
mount, util-linux, bsdutils, debianutils, ncurses-bin, perl-base, apt, dpkg), python and pip, openssl (of
ca-certificates), and prefect-init itself. No curl, wget, nc, nslookup, psql, redis-cli or jq: the python image
removes what it used to build."""

PACKAGE_PROGRAMS = {
    "git": ("git", "git-upload-pack", "git-receive-pack", "git-shell"),
    "openssh-client": ("ssh", "scp", "sftp", "ssh-keygen", "ssh-keyscan", "ssh-add", "ssh-agent"),
    "ca-certificates": ("update-ca-certificates", "openssl"),
}
"""The programs of each package the init image's ``apt-get install`` line may name."""

APT_PACKAGES: dict[str, str | None] = {
    "nc": "netcat-openbsd", "netcat": "netcat-openbsd", "ncat": "ncat", "nslookup": "bind9-dnsutils",
    "dig": "bind9-dnsutils", "host": "bind9-host", "curl": "curl", "wget": "wget",
    "psql": "postgresql-client", "pg_isready": "postgresql-client", "pg_dump": "postgresql-client",
    "pg_restore": "postgresql-client", "createdb": "postgresql-client", "redis-cli": "redis-tools",
    "mysql": "default-mysql-client", "mysqladmin": "default-mysql-client", "mysqldump": "default-mysql-client",
    "mariadb": "mariadb-client", "jq": "jq", "yq": "yq", "envsubst": "gettext-base", "ping": "iputils-ping",
    "ps": "procps", "sysctl": "procps", "pkill": "procps", "pgrep": "procps", "unzip": "unzip", "zip": "zip",
    "rsync": "rsync",
    "make": "make", "node": "nodejs", "nodejs": "nodejs", "npm": "npm", "npx": "npm", "ruby": "ruby",
    "bundle": "ruby-bundler", "java": "default-jre-headless", "gpg": "gnupg", "xmllint": "libxml2-utils",
    "htpasswd": "apache2-utils", "telnet": "telnet", "bc": "bc", "file": "file", "busybox": "busybox",
    "mongosh": None, "mongo": None, "vault": None, "kubectl": None, "helm": None, "aws": "awscli",
    "xz": "xz-utils", "bzip2": "bzip2", "less": "less", "vi": "vim-tiny", "nano": "nano", "sqlite3": "sqlite3",
    "ssh-keyscan": "openssh-client", "git": "git", "flyway": None, "liquibase": None, "migrate": None,
}
"""A program -> the Debian bookworm package that has it; None: not in Debian (its vendor's repository or
image)."""
VENDORS = {
    "vault": "HashiCorp's apt repository (https://www.hashicorp.com/official-packaging-guide), or "
             "COPY --from=hashicorp/vault /bin/vault /usr/local/bin/vault",
    "kubectl": "Kubernetes' apt repository (https://pkgs.k8s.io), or COPY --from=registry.k8s.io/kubectl:vX.Y.Z "
               "/bin/kubectl /usr/local/bin/kubectl",
    "helm": "Helm's release tarball (https://helm.sh/docs/intro/install/)",
    "mongosh": "MongoDB's apt repository (https://www.mongodb.com/docs/mongodb-shell/install/)",
    "mongo": "MongoDB's apt repository (mongosh replaces the mongo shell)",
    "flyway": "COPY --from=flyway/flyway /flyway /flyway (and a JRE)",
    "liquibase": "COPY --from=liquibase/liquibase /liquibase /liquibase (and a JRE)",
    "migrate": "COPY --from=migrate/migrate /usr/local/bin/migrate /usr/local/bin/migrate",
}
STANDARD_DIRS = ("/bin/", "/usr/bin/", "/usr/local/bin/", "/sbin/", "/usr/sbin/", "/usr/local/sbin/")


def image_packages() -> list[str]:
    """The packages the init image's ``apt-get install`` line names (deployments/Dockerfile, target init)."""
    text = dockerfile()
    init = text.split(" AS init", 1)[1].split("\nFROM ", 1)[0]
    match = re.search(r"apt-get install ((?:-\S+\s+)*)([^\\\n&]+)", init)
    return match.group(2).split() if match else []


def image_programs() -> frozenset[str]:
    """Every program the init image has."""
    extra = [program for package in image_packages() for program in PACKAGE_PROGRAMS.get(package, (package,))]
    return BASE_PROGRAMS | frozenset(extra)


def init_image() -> str:
    """The init image as the README builds it: ``prefect-init:0.1.0-init``."""
    return f"prefect-init:{__version__}-init"


def split_programs(programs: list[str]) -> tuple[list[str], list[str]]:
    """(programs the init image lacks, programs given by a path outside the standard directories: files of the
    original image or a volume), each once, in order."""
    have = image_programs()
    missing: list[str] = []
    paths: list[str] = []
    for program in programs:
        if not program or "$" in program:
            continue
        if "/" in program:
            if program.startswith(STANDARD_DIRS):
                program = program.rsplit("/", 1)[-1]
            else:
                if program not in paths:
                    paths.append(program)
                continue
        if program not in have and program not in missing:
            missing.append(program)
    return missing, paths


def dockerfile_lines(missing: list[str]) -> list[str]:
    """A Dockerfile for an image with what the command steps need, FROM the init image (as
    examples/myapp/Dockerfile does): Debian packages by apt-get, the rest as comments saying where it comes
    from."""
    packages = sorted({package for p in missing if (package := APT_PACKAGES.get(p))})
    unknown = [p for p in missing if p not in APT_PACKAGES]
    lines = [f"ARG INIT_IMAGE={init_image()}", "FROM ${INIT_IMAGE}", "USER root"]
    if packages:
        lines += ["RUN apt-get update \\",
                  f" && apt-get install -y --no-install-recommends {' '.join(packages)} \\",
                  " && rm -rf /var/lib/apt/lists/*"]
    for program in missing:
        if program in VENDORS:
            lines.append(f"# {program}: not a Debian package: {VENDORS[program]}")
    for program in unknown:
        lines.append(f"# {program}: not known here: install it (or COPY it from the image it ran in)")
    lines.append(f"USER {UID}:{UID}")
    return lines


__all__ = ["BASE_IMAGE", "BASE_PROGRAMS", "dockerfile_lines", "image_packages", "image_programs", "init_image",
           "split_programs"]
