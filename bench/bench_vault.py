"""Vault-step benchmark (issue 4): 50 secret paths in one step against 50 sequential hvac reads, in one run.

    .venv/bin/python bench/bench_vault.py [--runs N]

Both sides are whole processes (interpreter, imports, reads, files) against the Vault stand-in of
tests/vaultserver.py, with no added latency (loopback) and with 20 ms per answer (a Vault across the network
with TLS and storage). The baseline is the seed's approach in Python: one hvac client, 50 reads one after the
other, 50 JSON files written. Target: <= 0.3x.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BIN, PYTHON, base_env, measure, table
from tests.vaultserver import VaultState, vault_server

TOKEN = "hvs.bench-token"
SEQUENTIAL = """
import json, sys, hvac
client = hvac.Client(url=sys.argv[1], token=sys.argv[2])
for i in range(50):
    data = client.adapter.get(f"/v1/secret/data/app{i}")["data"]["data"]
    with open(f"{sys.argv[3]}/{i}.json", "w") as handle:
        json.dump(data, handle)
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-vault-"))
    (work / "token").write_text(TOKEN)
    (work / "sequential.py").write_text(SEQUENTIAL)
    (work / "seq-out").mkdir()
    state = VaultState()
    state.tokens[TOKEN] = ["secret/"]
    for i in range(50):
        state.put_kv2(f"secret/app{i}", {"username": f"user{i}", "password": f"pw-{i}-xxxxxxxx"})
    rows = []
    with vault_server(state) as vault:
        spec = work / "init.yaml"
        spec.write_text(json.dumps({"version": 1, "name": "bench-vault", "steps": [{"name": "secrets", "vault": {
            "address": vault.address, "auth": {"token_file": str(work / "token")},
            "secrets": [{"path": f"secret/data/app{i}", "dest": f"out/{i}.json"} for i in range(50)]}}]}))
        for latency in (0.0, 0.02):
            state.latency = latency
            ours, sequential = [], []
            for _ in range(args.runs):  # interleaved: both sides see the same machine load
                ours.append(measure([str(BIN / "prefect-init"), "run", str(spec), "--local"], base_env())[0])
                sequential.append(measure([PYTHON, str(work / "sequential.py"), vault.address, TOKEN,
                                           str(work / "seq-out")], base_env())[0])
            mine, theirs = statistics.median(ours), statistics.median(sequential)
            rows.append((f"{latency * 1000:.0f} ms", f"{mine:.3f}", f"{theirs:.3f}", f"{mine / theirs:.2f}x"))
    print(f"## 50 secret paths (median of {args.runs} runs, whole processes)\n")
    print(table(rows, ("Vault latency per answer", "prefect-init vault step s", "50 sequential hvac reads s",
                       "ratio")))


if __name__ == "__main__":
    main()
