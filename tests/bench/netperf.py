"""A tiny TCP throughput and latency tool (stdlib only), run on the host, in namespaces and in
containers alike, so every path is measured with the same code.

    python3 netperf.py serve PORT
    python3 netperf.py stream HOST PORT MIB      → {"mib_s": …}
    python3 netperf.py rr HOST PORT COUNT        → {"rtt_us_median": …, "rtt_us_p99": …}
"""

import json
import socket
import statistics
import sys
import threading
import time

CHUNK = 256 * 1024


def serve(port: int) -> None:
    srv = socket.create_server(("0.0.0.0", port), reuse_port=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def handle(conn: socket.socket) -> None:
    with conn:
        mode = conn.recv(1)
        if mode == b"S":                       # stream: swallow everything, answer with the count
            total = 0
            while True:
                data = conn.recv(CHUNK)
                if not data:
                    break
                total += len(data)
            return
        if mode == b"R":                       # request/response: echo one byte at a time
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while True:
                b = conn.recv(1)
                if not b:
                    return
                conn.sendall(b)


def stream(host: str, port: int, mib: int) -> dict:
    payload = b"x" * CHUNK
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(b"S")
        t0 = time.perf_counter()
        for _ in range(mib * 4):
            s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        s.recv(1)
        seconds = time.perf_counter() - t0
    return {"mib_s": round(mib / seconds, 1)}


def rr(host: str, port: int, count: int) -> dict:
    times = []
    with socket.create_connection((host, port), timeout=30) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b"R")
        for _ in range(count):
            t0 = time.perf_counter()
            s.sendall(b"p")
            s.recv(1)
            times.append((time.perf_counter() - t0) * 1e6)
    times.sort()
    return {"rtt_us_median": round(statistics.median(times), 1), "rtt_us_p99": round(times[int(len(times) * 0.99)], 1)}


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "serve":
        serve(int(sys.argv[2]))
    elif cmd == "stream":
        print(json.dumps(stream(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
    else:
        print(json.dumps(rr(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
