#!/usr/bin/env bash
# The older Prefect servers that tests/prefect_adapter/test_servers.py mirrors a run into (the newest is the
# project's own .venv): one virtual environment per version under $WORK/<version>, made with python3 -m venv and
# pip. Idempotent: a venv whose marker names the same pins and Python is kept (a change makes it again). The
# README's test command runs it.
#
# No registry's or mirror's host name is written here: pip reads its index from its own configuration.
set -euo pipefail

WORK=${PREFECT_INIT_SERVERS_WORK:-/var/tmp/prefect-init-servers}
PYTHON=${PYTHON:-python3}
VERSIONS=(3.1.15 3.4.25)
# What each server needs beside itself, found by starting `prefect server start` from its venv: both import
# importlib_metadata without depending on it, and use FastAPI's Body(min_items=...), which newer FastAPI
# releases dropped (fastapi 0.115.12, with the starlette it takes); 3.1 also wants the pydantic and
# pydantic-settings of its time (newer ones warn on every start).
declare -A PINS=(
  [3.1.15]="prefect==3.1.15 fastapi==0.115.12 starlette<0.47 pydantic==2.10.6 pydantic-settings<2.8 importlib_metadata"
  [3.4.25]="prefect==3.4.25 fastapi==0.115.12 starlette<0.47 importlib_metadata"
)
MARKER=.prefect-init-installed
mkdir -p "$WORK"

log() { printf '== %s %s\n' "$(date +%T)" "$*" >&2; }
# this machine's pip may list find-links folders that lack a project: one warning line each, not worth showing
quiet_pip() { "$@" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2 || true); }

install_version() {
  local version=$1 venv=$WORK/$1 pins=${PINS[$1]} started=$SECONDS want
  local -a args
  read -r -a args <<< "$pins"
  want="$pins; $("$PYTHON" -V 2>&1)"  # another Python (3.11 -> 3.12) makes the venv again
  if [[ -f $venv/$MARKER && $(cat "$venv/$MARKER") == "$want" ]]; then
    log "prefect $version: kept ($venv)"
    return
  fi
  log "prefect $version: making $venv"
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  # --no-compile: the check below compiles what a server imports, as the first import does; the rest never runs
  quiet_pip "$venv/bin/pip" install -q --no-compile "${args[@]}"
  # what failed before the pins: `prefect` itself (importlib_metadata) and the server's app (FastAPI)
  local found
  found=$("$venv/bin/python" -c 'import prefect.cli, prefect.server.api.server, prefect; print(prefect.__version__)')
  if [[ $found != "$version" ]]; then
    echo "prefect $version: the venv has prefect $found" >&2
    return 1
  fi
  printf '%s\n' "$want" > "$venv/$MARKER"
  log "prefect $version: installed in $((SECONDS - started)) s"
}

started=$SECONDS
pids=()
for version in "${VERSIONS[@]}"; do  # at once: each install is mostly one core's work
  install_version "$version" &
  pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do
  wait "$pid" || failed=1
done
if ((failed)); then
  echo "tests/servers/setup.sh: a Prefect server venv could not be made (above)" >&2
  exit 1
fi
log "prefect servers ready in $((SECONDS - started)) s: ${VERSIONS[*]} under $WORK"
