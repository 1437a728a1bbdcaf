"""What waiting for a replica costs a request's end: the ledger's terminal write (finish.lua)
with and without the WAIT that follows it under Sentinel (REDIS_WAIT_REPLICAS=1).

    .venv/bin/python -m bench.replica_wait [--writes 2000]

Starts a master and a replica of its own (redis-server on free ports, no persistence) and
times `Ledger.fail` one write after another from one client: without WAIT, then with it.
Prints one JSON line: p50, p99 and mean in milliseconds for each, and the difference.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import subprocess
import tempfile
import time

import redis

from orchestrator.store.connection import NO_REPLICAS, Replicas
from orchestrator.store.ledger import Ledger
from tests.processes import free_port, wait_until

ERROR = {"status": 500, "code": "bench", "message": "ended", "details": {}}


def server(port: int, directory: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", directory, *args], stdout=subprocess.DEVNULL)


def timings(ledger: Ledger, writes: int, label: str) -> list[float]:
    spent = []
    for n in range(writes):
        started = time.perf_counter()
        ledger.fail(f"{label}-{n}", ERROR)
        spent.append((time.perf_counter() - started) * 1000)
    return spent


def summary(spent: list[float]) -> dict:
    ordered = sorted(spent)
    return {"p50_ms": round(statistics.median(ordered), 3), "p99_ms": round(ordered[int(len(ordered) * 0.99)], 3),
            "mean_ms": round(statistics.fmean(ordered), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=2000)
    args = parser.parse_args()
    master_port, replica_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as directory:
        processes = [server(master_port, directory),
                     server(replica_port, directory, "--replicaof", "127.0.0.1", str(master_port))]
        try:
            client = redis.Redis(port=master_port, decode_responses=True)
            replica = redis.Redis(port=replica_port, decode_responses=True)
            # in sync: until then (about a second) a WAIT times out
            wait_until(lambda: replica.info("replication")["master_link_status"] == "up", 20, "the replica")
            without = timings(Ledger(client, "bench:", 60, NO_REPLICAS), args.writes, "plain")
            with_wait = timings(Ledger(client, "bench:", 60, Replicas(1, 0.5)), args.writes, "waited")
        finally:
            for process in processes:
                process.kill()
                process.wait()
    plain, waited = summary(without), summary(with_wait)
    print(json.dumps({"bench": "replica_wait", "date": datetime.date.today().isoformat(),
                      "machine": platform.node(), "writes": args.writes, "without_wait": plain,
                      "with_wait": waited, "added_p50_ms": round(waited["p50_ms"] - plain["p50_ms"], 3)}))


if __name__ == "__main__":
    main()
