"""Network set-up: what envtool's supervisor spends on each container's network and on each change
of the project's port map, timed in process (the stack figures' "before the first container" and
"between services" phases are made of these), in a network namespace of the benchmark's own
(`unshare -n`: its bridge, pairs and tables vanish with that process).

  attach               a container's network namespace, its veth pair on the bridge (made,
                       enslaved and up in one request) and its address, link and route inside:
                       ProjectNetwork.attach, as the supervisor runs it
  table, kept context  replacing the project's nft table (a 10-service stack's ruleset: published
                       port, service addresses): nft.apply, through the process's kept context
  table, new context   the same through a context made and freed for the one transaction (envtool
                       before 2026-12-04): freeing the socket makes the kernel finish the deletion
  FORWARD listing      `nft -j -a list chain` in process, against the `nft` command

    .venv/bin/python tests/bench/bench_netsetup.py [--runs 30] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def stats(ms: list[float]) -> dict:
    return {"median_ms": round(statistics.median(ms), 2), "min_ms": round(min(ms), 2),
            "max_ms": round(max(ms), 2), "runs": len(ms)}


def inside(runs: int) -> dict:
    """Runs in the benchmark's own network namespace."""
    sys.path.insert(0, str(REPO))
    import ipaddress

    from envtool.network import nft
    from envtool.network.netlink import Netlink
    from envtool.network.project import ProjectNetwork
    from envtool.runtime.namespaces import new_netns

    net = ProjectNetwork("bench", ipaddress.IPv4Network("10.77.0.0/24"), new_netns)
    net.host = Netlink()
    net.host.ensure_bridge(net.bridge, net.gateway, net.subnet.prefixlen)
    attach, fds = [], []
    for i in range(runs):
        t0 = time.perf_counter()
        fd, _ = net.attach(f"c{i}")
        attach.append((time.perf_counter() - t0) * 1000)
        fds.append(fd)

    services = {f"10.77.0.{200 + i}": f"10.77.0.{i + 2}" for i in range(10)}
    ports = [nft.PortRule(None, 18181, "tcp", "10.77.0.11", 8000)]
    rules = {"services": services, "service_net": "10.77.0.128/25", "link": "10.77.0.0/25"}

    def port_map(n: int) -> list[nft.PortRule]:        # it changes with every transaction
        return ports if n % 2 else []

    lib = nft._libnftables()
    if lib is None:
        raise SystemExit("libnftables is not installed")
    fresh, kept = [], []
    for i in range(runs):                   # one after the other: a freed context's flush waits for
        t0 = time.perf_counter()            # every pending release, the kept context's too
        ctx = lib.lib.nft_ctx_new(0)
        lib.lib.nft_ctx_buffer_output(ctx)
        lib.lib.nft_ctx_buffer_error(ctx)
        text = nft.clear("bench") + nft.render("bench", net.bridge, str(net.subnet), port_map(i), **rules)
        rc = lib.lib.nft_run_cmd_from_buffer(ctx, text.encode())
        lib.lib.nft_ctx_free(ctx)
        fresh.append((time.perf_counter() - t0) * 1000)
        assert rc == 0
    for i in range(runs):
        t0 = time.perf_counter()
        nft.apply("bench", net.bridge, str(net.subnet), port_map(i), **rules)   # raises when it fails
        kept.append((time.perf_counter() - t0) * 1000)

    subprocess.run(["nft", "add table ip filter; add chain ip filter FORWARD "
                    "{ type filter hook forward priority 0; policy accept; }"], check=True)
    listing, command = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        nft._nft("-j", "-a", "list", "chain", "ip", "filter", "FORWARD")
        listing.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        subprocess.run([nft.nft_path(), "-j", "-a", "list", "chain", "ip", "filter", "FORWARD"],
                       capture_output=True, check=True)
        command.append((time.perf_counter() - t0) * 1000)
    for fd in fds:
        os.close(fd)
    return {"attach": stats(attach), "table_kept": stats(kept), "table_new_context": stats(fresh),
            "forward_listing_lib": stats(listing), "forward_listing_command": stats(command)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--write")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inside:
        print(json.dumps(inside(args.runs)))
        return
    proc = subprocess.run(["unshare", "-n", sys.executable, __file__, "--inside", "--runs", str(args.runs)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"bench_netsetup failed: {proc.stderr[-2000:]}")
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    out = {"figure": "network set-up", "results": results}
    print(json.dumps(out, indent=2))
    if args.write:
        write_section(Path(args.write), out)


ROWS = [("attach", "a container's network: netns, veth pair on the bridge, address and route inside"),
        ("table_kept", "replace the project's nft table (10 services), the kept context"),
        ("table_new_context", "the same, a context made and freed for it (before 2026-12-04)"),
        ("forward_listing_lib", "list the host FORWARD chain as JSON, in process"),
        ("forward_listing_command", "the same, the `nft` command")]


def write_section(path: Path, out: dict) -> None:
    from report import replace_section

    r = out["results"]
    lines = [f"Measured {time.strftime('%Y-%m-%d')}; medians (min–max) in a network namespace of the benchmark's own.",
             "", "| step | median | min–max | runs |", "|---|---:|---:|---:|"]
    for key, label in ROWS:
        s = r[key]
        lines.append(f"| {label} | {s['median_ms']} ms | {s['min_ms']}–{s['max_ms']} | {s['runs']} |")
    replace_section(path, "netsetup", lines)


if __name__ == "__main__":
    main()
