#!/usr/bin/env bash
# What the pod tests need on a Debian bookworm machine with no image registry: rootful podman with runc, and a
# stand-in for the official python:3.11-slim-bookworm image made with debootstrap. Idempotent: what is there is
# kept (REBUILD_BASE=1 makes the base again). The README's test command runs it.
#
# No registry's or mirror's host name is written anywhere: the Debian mirror is read from this machine's apt
# sources, pip's index from `pip config list`, at run time; the pip settings for builds go to $WORK, outside the
# repository, and reach a build only as read-only mounts (tests/pods/images.py), never a layer.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${PREFECT_INIT_PODS_WORK:-/var/tmp/prefect-init-pods}
BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm
SUITE=bookworm
ROOTFS=$WORK/rootfs
IN_BUILD_CA=/run/host-ca.crt
export CONTAINERS_CONF=$HERE/containers.conf
mkdir -p "$WORK"

redact() { sed -E 's#([a-z+]+://)[^/[:space:]]+#\1<host>#g'; }
log() { printf '== %s %s\n' "$(date +%T)" "$*" >&2; }

install_packages() {
  local missing=() p
  for p in podman runc debootstrap; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  # Docker Compose itself (Debian's docker-compose, 1.29) for tests/pods/test_compose.py, against podman's Docker
  # API; without its recommends (Docker's own daemon is not wanted here)
  if ! dpkg-query -W -f='${Status}' docker-compose 2>/dev/null | grep -q 'install ok installed'; then
    log "installing docker-compose"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
  fi
}

# apt_uri SUITE: first enabled "deb" URI of this machine's apt sources serving SUITE
apt_uri() {
  local suite=$1 f
  {
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [[ -f $f ]] || continue
      awk -v s="$suite" '$1=="deb" { n=2; if ($2 ~ /^\[/) { while ($n !~ /\]$/) n++; n++ }
                                     if ($(n+1)==s) print $n }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
      [[ -f $f ]] || continue
      awk -v s="$suite" 'BEGIN{RS=""; FS="\n"}
        { types=""; uris=""; suites=""; enabled="yes"
          for (i=1;i<=NF;i++) { l=$i; if (l ~ /^#/) continue
            k=tolower(l); sub(/:.*/,"",k); v=l; sub(/^[^:]*:[ \t]*/,"",v)
            if (k=="types") types=v; else if (k=="uris") uris=v
            else if (k=="suites") suites=v; else if (k=="enabled") enabled=tolower(v) }
          if (enabled=="no" || (" " types " ") !~ / deb /) next
          if ((" " suites " ") ~ (" " s " ")) { split(uris,u," "); print u[1] } }' "$f"
    done
  } | head -n1
}

base_debootstrap() {
  local mirror
  mirror=$(apt_uri "$SUITE")
  [[ -n $mirror ]] || { echo "no apt source for $SUITE found" >&2; return 1; }
  umount "$ROOTFS/proc" 2>/dev/null || true
  if mountpoint -q "$ROOTFS/proc" 2>/dev/null; then echo "$ROOTFS/proc still mounted" >&2; return 1; fi
  rm -rf "$ROOTFS"
  if ! debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,netbase,tzdata \
       "$SUITE" "$ROOTFS" "$mirror" 2>&1 | redact > "$WORK/debootstrap.log"; then
    tail -30 "$WORK/debootstrap.log" >&2; return 1
  fi
}

base_customize() {
  local mirror security r=$ROOTFS
  mirror=$(apt_uri "$SUITE"); security=$(apt_uri "$SUITE-security")
  # apt sources as in the official image (deb822), from this machine's sources, read now
  rm -f "$r/etc/apt/sources.list"
  {
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$mirror" "$SUITE" "$SUITE"
    [[ -n $security ]] && printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$security" "$SUITE"
  } > "$r/etc/apt/sources.list.d/debian.sources"
  # the slim images' dpkg excludes and apt cache settings, so later apt-get installs stay small too
  cat > "$r/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
  cat > "$r/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  printf 'Acquire::GzipIndexes "true";\n' > "$r/etc/apt/apt.conf.d/docker-gzip-indexes"
  printf 'APT::AutoRemove::SuggestsImportant "false";\n' > "$r/etc/apt/apt.conf.d/docker-autoremove-suggests"
  # debootstrap takes the release suite only: bring in bookworm-updates/-security like the official image
  cp /etc/resolv.conf "$r/etc/resolv.conf"
  mount -t proc proc "$r/proc"
  trap 'umount "$ROOTFS/proc" 2>/dev/null || true; trap - RETURN' RETURN
  if ! chroot "$r" env DEBIAN_FRONTEND=noninteractive \
       sh -c 'apt-get update -q && apt-get -y -q upgrade && apt-get clean' 2>&1 | redact > "$WORK/upgrade.log"; then
    tail -20 "$WORK/upgrade.log" >&2; return 1
  fi
  grep -E '^[0-9]+ upgraded' "$WORK/upgrade.log" || true
  umount "$r/proc"
  # the venv at /usr/local, like the official image's /usr/local python: python, pip, python3 there.
  # pip is NOT upgraded: Debian's pip uses the system CA bundle.
  chroot "$r" /usr/bin/python3 -m venv /usr/local
  # trim what the slim image does not carry
  find "$r/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$r"/usr/share/{man,groff,info,lintian,linda}/* "$r"/usr/share/locale/*
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/* "$r"/var/cache/debconf/*-old \
         "$r"/var/log/* "$r"/var/lib/dpkg/*-old "$r"/tmp/* "$r"/root/.cache
  mkdir -p "$r/var/lib/apt/lists/partial" "$r/var/cache/apt/archives/partial"
  : > "$r/etc/hostname"; : > "$r/etc/resolv.conf"
  find "$r/usr/local" -name __pycache__ -type d -prune -exec rm -rf {} +
  du -sh "$r"
}

base_import() {
  local pyver
  pyver=$(chroot "$ROOTFS" /usr/bin/python3 -c 'import platform; print(platform.python_version())')
  # importing under the same name moves the tag; an older base stays as <none> until pruned
  tar --numeric-owner -C "$ROOTFS" -c . | podman import \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "ENV PYTHON_VERSION=$pyver" \
    --change 'CMD ["python3"]' \
    --message "debootstrap --variant=minbase $SUITE + venv at /usr/local" \
    - "$BASE_IMAGE"
  rm -rf "$ROOTFS"      # holds the mirror's name in its apt sources; the image is what we keep
  podman run --rm --pull=never "$BASE_IMAGE" sh -c \
    'for c in python pip python3; do command -v $c; done; python --version; pip --version'
}

write_build_pip_conf() {
  local f=$WORK/pip-build.conf key val
  local index="" extra=() trusted="" timeout=""
  while IFS= read -r line; do
    key=${line%%=*}; val=${line#*=}; val=${val#\'}; val=${val%\'}
    key=${key#:env:}; key=${key#global.}; key=${key#install.}; key=${key#.}
    case $key in
      index-url)       [[ $val == http* ]] && index=$val ;;
      extra-index-url) for u in $val; do [[ $u == http* ]] && extra+=("$u"); done ;;
      trusted-host)    trusted=$val ;;
      timeout|default-timeout) timeout=$val ;;
    esac
  done < <(pip config list 2>/dev/null || true)
  {
    echo "# generated by tests/pods/setup.sh from \`pip config list\`; mounted read-only at /etc/pip.conf during builds only"
    echo "[global]"
    echo "cert = $IN_BUILD_CA"
    [[ -n $index ]] && echo "index-url = $index"
    ((${#extra[@]})) && echo "extra-index-url = ${extra[*]}"
    [[ -n $trusted ]] && echo "trusted-host = $trusted"
    [[ -n $timeout ]] && echo "timeout = $timeout"
    echo "disable-pip-version-check = true"
  } > "$f"
  echo "pip-build.conf: $(grep -c = "$f") settings (no host names printed)"
}


install_packages
if [[ ${REBUILD_BASE:-0} == 1 ]] || ! podman image exists "$BASE_IMAGE"; then
  log "making $BASE_IMAGE with debootstrap"
  base_debootstrap
  base_customize
  base_import
  podman image prune -f >/dev/null
fi
write_build_pip_conf >&2
log "podman ready: $(podman --version), base $BASE_IMAGE"
