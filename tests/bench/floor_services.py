"""The stack figures' floor, measured inside a container of the bench's own image (run by
bench_stack.py as `envtool run --rm -v THIS:/floor.py:ro IMAGE python3 /floor.py N RUNS`).

For the topology of bench_stack.py with N services it times the critical path of the services' own
work, with nothing of any tool's in between: s1's `python3 -m http.server` until it accepts a
connection and then its healthcheck command once (it succeeds); the middle tier s2 … s(N-1)
started together, each until it accepts, and their healthchecks run together once each; the last
service until it accepts.  Prints JSON: the median of each phase and of their sum over RUNS runs.
Standard library only (the image has python3 and nothing else).
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import time

HEALTH = "import urllib.request as u; u.urlopen('http://127.0.0.1:{port}')"


def start(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["python3", "-m", "http.server", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def accepting(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.002)
    raise SystemExit(f"port {port} never accepted")


def probe(ports: list[int]) -> None:
    procs = [subprocess.Popen(["python3", "-c", HEALTH.format(port=p)]) for p in ports]
    if any(p.wait() != 0 for p in procs):
        raise SystemExit("a healthcheck failed against a server that accepts")


def once(n: int, base: int) -> dict[str, float]:
    servers: list[subprocess.Popen[bytes]] = []
    deadline = time.monotonic() + 60
    try:
        t0 = time.perf_counter()
        servers.append(start(base))
        accepting(base, deadline)
        t1 = time.perf_counter()
        probe([base])
        t2 = time.perf_counter()
        middle = [base + i for i in range(1, n - 1)]
        servers += [start(p) for p in middle]
        for p in middle:
            accepting(p, deadline)
        t3 = time.perf_counter()
        probe(middle)
        t4 = time.perf_counter()
        last = base + n - 1
        servers.append(start(last))
        accepting(last, deadline)
        t5 = time.perf_counter()
    finally:
        for s in servers:
            s.kill()
            s.wait()
    return {"first_accepts": t1 - t0, "first_probe": t2 - t1, "middle_accept": t3 - t2, "middle_probe": t4 - t3,
            "last_accepts": t5 - t4, "total": t5 - t0}


def main() -> None:
    n, runs = int(sys.argv[1]), int(sys.argv[2])
    samples = [once(n, 20000 + 100 * (i % 10)) for i in range(runs + 1)][1:]      # one warm-up
    print(json.dumps({k: round(statistics.median(s[k] for s in samples), 4) for k in samples[0]}))


if __name__ == "__main__":
    main()
