"""Network: TCP throughput and round-trip latency on five paths, with the same stdlib tool
(netperf.py) at both ends:

  host loopback        127.0.0.1 on the host
  raw veth pair        two network namespaces joined by a bare veth (the floor for any bridge)
  bridge + conntrack   two namespaces on a bridge in a third, which has conntrack and nat hooks (what
                       any network that publishes ports needs) and the host's br_netfilter setting:
                       the floor of a bridged container network, with no envtool in it
  container → container  two services of one envtool stack, by service name (bridge, veth, nftables)
  published port       the host → 127.0.0.1:PORT → DNAT → a container

and, with --rootless USER (an ordinary user with a subordinate range, .ci/setup's envtool-test), the
same stack run by that user (the session's bridge; published ports bound on the host by pasta) and
pasta's own path (a server in a bare `pasta -t PORT` namespace: the floor of a rootless published port).

    .venv/bin/python tests/bench/bench_net.py [--runs 5] [--mib 256] [--rootless USER] [--write docs/benchmarks.md]

Only addresses this benchmark creates are used: loopback, its own namespaces and its own containers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = os.environ.get("ENVTOOL_ROOT", "/var/tmp/envtool-test")
PORT = 5201
PUBLISHED = 18202
BRIDGED = "bridge + conntrack, no envtool"


def tool(*args: str) -> list[str]:
    return ["python3", "/bench/netperf.py", *args]


def run_json(cmd: list[str], env: dict[str, str] | None = None) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip()[-300:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def wait_connect(prefix: list[str], host: str, port: int) -> None:
    code = f"import socket,time\nfor _ in range(300):\n    try:\n        socket.create_connection(('{host}', {port}), 1).close(); break\n    except OSError: time.sleep(0.02)\n"
    subprocess.run([*prefix, sys.executable, "-c", code], check=True, timeout=30)


def measure(client: list[str], host: str, port: int, runs: int, mib: int) -> dict:
    streams = [run_json([*client, "stream", host, str(port), str(mib)])["mib_s"] for _ in range(runs)]
    rrs = [run_json([*client, "rr", host, str(port), "2000"]) for _ in range(runs)]
    return {"mib_s": summary(streams), "rtt_us": summary([r["rtt_us_median"] for r in rrs])}


def summary(xs: list[float]) -> dict:
    return {"median": round(statistics.median(xs), 1), "min": round(min(xs), 1), "max": round(max(xs), 1)}


def host_loopback(runs: int, mib: int) -> dict:
    srv = subprocess.Popen([sys.executable, str(HERE / "netperf.py"), "serve", str(PORT)])
    try:
        wait_connect([], "127.0.0.1", PORT)
        return measure([sys.executable, str(HERE / "netperf.py")], "127.0.0.1", PORT, runs, mib)
    finally:
        srv.terminate()
        srv.wait()


@contextmanager
def namespaces(count: int) -> Iterator[list[str]]:
    """`count` network namespaces of this benchmark's own, loopback up; deleted afterwards."""
    names = [f"etb-{uuid.uuid4().hex[:5]}" for _ in range(count)]
    try:
        for ns in names:
            subprocess.run(["ip", "netns", "add", ns], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        yield names
    finally:
        for ns in names:
            subprocess.run(["ip", "netns", "del", ns], check=False)


def address_up(ns: str, dev: str, addr: str) -> None:
    subprocess.run(["ip", "-n", ns, "addr", "add", addr, "dev", dev], check=True)
    subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True)


def veth_pair(runs: int, mib: int) -> dict:
    with namespaces(2) as (a, b):
        subprocess.run(["ip", "link", "add", "etb0", "netns", a, "type", "veth", "peer", "name", "etb1", "netns", b],
                       check=True)
        address_up(a, "etb0", "10.251.0.1/30")
        address_up(b, "etb1", "10.251.0.2/30")
        return serve_and_measure(a, b, "10.251.0.2", runs, mib)


# What a bridged network that publishes ports costs without envtool: conntrack (which DNAT needs) and
# nat hooks in the namespace that holds the bridge, and the host's br_netfilter setting (bridged
# packets then pass the inet hooks).
HUB_RULES = """table inet bench {
  chain forward { type filter hook forward priority 0; policy accept; ct state established,related accept; }
  chain prerouting { type nat hook prerouting priority dstnat; policy accept; }
  chain postrouting { type nat hook postrouting priority srcnat; policy accept; }
}
"""


def bridged_pair(runs: int, mib: int) -> dict:
    with namespaces(3) as (hub, a, b):
        subprocess.run(["ip", "-n", hub, "link", "add", "br0", "type", "bridge"], check=True)
        subprocess.run(["ip", "-n", hub, "link", "set", "br0", "up"], check=True)
        for ns, dev, peer, addr in ((a, "etb0", "etp0", "10.251.1.1/24"), (b, "etb1", "etp1", "10.251.1.2/24")):
            subprocess.run(["ip", "link", "add", dev, "netns", ns, "type", "veth", "peer", "name", peer, "netns", hub],
                           check=True)
            subprocess.run(["ip", "-n", hub, "link", "set", peer, "master", "br0", "up"], check=True)
            address_up(ns, dev, addr)
        host_setting = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
        if host_setting.exists():
            subprocess.run(["ip", "netns", "exec", hub, "sysctl", "-qw",
                            f"net.bridge.bridge-nf-call-iptables={host_setting.read_text().strip()}"], check=True)
        subprocess.run(["ip", "netns", "exec", hub, "nft", "-f", "-"], input=HUB_RULES, text=True, check=True)
        return serve_and_measure(a, b, "10.251.1.2", runs, mib)


def serve_and_measure(client_ns: str, server_ns: str, addr: str, runs: int, mib: int) -> dict:
    srv = subprocess.Popen(["ip", "netns", "exec", server_ns, sys.executable, str(HERE / "netperf.py"), "serve",
                            str(PORT)])
    try:
        wait_connect(["ip", "netns", "exec", client_ns], addr, PORT)
        return measure(["ip", "netns", "exec", client_ns, sys.executable, str(HERE / "netperf.py")], addr, PORT,
                       runs, mib)
    finally:
        srv.terminate()
        srv.wait()


def as_user(user: str | None) -> list[str]:
    if user is None:
        return []
    import pwd

    home = pwd.getpwnam(user).pw_dir
    return ["runuser", "-u", user, "--", "env", "-i", f"HOME={home}", "PATH=/usr/bin:/bin:/usr/sbin:/sbin",
            "NO_COLOR=1"]


def pasta_only(runs: int, mib: int, user: str) -> dict:
    """pasta's own figure: the server in a namespace of pasta's, the client on the host's loopback."""
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        os.chmod(tmp, 0o755)
        shutil.copy(HERE / "netperf.py", Path(tmp) / "netperf.py")
        before = user_pids(user)
        srv = subprocess.Popen([*as_user(user), "pasta", "--config-net", "-f", "-q", "-t", str(PORT + 1), "-u", "none",
                                "-T", "none", "-U", "none", "--", "python3", f"{tmp}/netperf.py", "serve",
                                str(PORT + 1)], start_new_session=True)
        try:
            wait_connect([], "127.0.0.1", PORT + 1)
            time.sleep(0.5)          # pasta accepts before the server in its namespace listens
            return measure([sys.executable, str(HERE / "netperf.py")], "127.0.0.1", PORT + 1, runs, mib)
        finally:
            os.killpg(srv.pid, 15)
            srv.wait()
            for pid in user_pids(user) - before:     # the server pasta started: ours, ended by pid
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass


def user_pids(user: str) -> set[int]:
    import pwd

    uid = pwd.getpwnam(user).pw_uid
    out = set()
    for p in os.listdir("/proc"):
        try:
            if p.isdigit() and os.stat(f"/proc/{p}").st_uid == uid:
                out.add(int(p))
        except OSError:
            continue
    return out


def podman_published(runs: int, mib: int, user: str, image: str = "localhost/envtool-bench-py:latest") -> dict:
    """Rootless podman's published port (its default for a user: rootlessport) on the same image,
    which bench_rootless.py loads into the user's podman store."""
    if not shutil.which("podman"):
        return {"error": "podman is not installed"}
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        os.chmod(tmp, 0o755)
        shutil.copy(HERE / "netperf.py", Path(tmp) / "netperf.py")
        name = f"benchnet-{uuid.uuid4().hex[:6]}"
        run = subprocess.run([*as_user(user), "podman", "run", "-d", "--rm", "--name", name, "-p",
                              f"127.0.0.1:{PUBLISHED + 2}:{PORT}", "-v", f"{tmp}:/bench:ro", image, "python3",
                              "/bench/netperf.py", "serve", str(PORT)], capture_output=True, text=True)
        if run.returncode != 0:
            return {"error": run.stderr.strip()[-200:]}
        try:
            wait_connect([], "127.0.0.1", PUBLISHED + 2)
            time.sleep(0.5)
            return measure([sys.executable, str(HERE / "netperf.py")], "127.0.0.1", PUBLISHED + 2, runs, mib)
        finally:
            subprocess.run([*as_user(user), "podman", "rm", "-f", name], capture_output=True)


def containers(runs: int, mib: int, user: str | None = None) -> tuple[dict, dict]:
    env = {**os.environ, "ENVTOOL_ROOT": ROOT, "NO_COLOR": "1"}
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        if user is not None:
            os.chmod(tmp, 0o755)
        (Path(tmp) / "bench").mkdir()
        shutil.copy(HERE / "netperf.py", Path(tmp) / "bench" / "netperf.py")
        (Path(tmp) / "envtool.toml").write_text(f"""[project]
name = "benchnet"
[images.py]
from = "debian:bookworm"
packages = ["python3"]
[services.srv]
image = "py"
command = {json.dumps(tool("serve", str(PORT)))}
init = true
volumes = ["./bench:/bench:ro"]
ports = ["127.0.0.1:{PUBLISHED}:{PORT}"]
[services.cli]
image = "py"
command = ["sleep", "3600"]
init = true
volumes = ["./bench:/bench:ro"]
""")
        if user is not None:
            subprocess.run(["chown", "-R", user, tmp], check=True)
        cli = [*as_user(user), sys.executable, "-m", "envtool", "-C", tmp]
        up = subprocess.run([*cli, "up", "-d"], env=env, capture_output=True, text=True)
        if up.returncode != 0:
            raise SystemExit(f"envtool up failed: {up.stderr.strip()}")
        try:
            exec_ = [*cli, "exec", "cli", "python3", "/bench/netperf.py"]
            for _ in range(300):
                probe = subprocess.run([*exec_, "rr", "srv", str(PORT), "1"], env=env, capture_output=True)
                if probe.returncode == 0:
                    break
                time.sleep(0.05)
            c2c = {"mib_s": summary([run_json([*exec_, "stream", "srv", str(PORT), str(mib)], env)["mib_s"]
                                     for _ in range(runs)]),
                   "rtt_us": summary([run_json([*exec_, "rr", "srv", str(PORT), "2000"], env)["rtt_us_median"]
                                      for _ in range(runs)])}
            published = measure([sys.executable, str(HERE / "netperf.py")], "127.0.0.1", PUBLISHED, runs, mib)
        finally:
            subprocess.run([*cli, "down"], env=env, capture_output=True)
    return c2c, published


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--rootless", metavar="USER", help="also measure a rootless stack run by USER, and pasta alone")
    ap.add_argument("--write")
    args = ap.parse_args()
    results = {"host loopback": host_loopback(args.runs, args.mib), "raw veth pair": veth_pair(args.runs, args.mib),
               BRIDGED: bridged_pair(args.runs, args.mib)}
    results["container → container"], results["published port (host → container)"] = containers(args.runs, args.mib)
    if args.rootless:
        c2c, published = containers(args.runs, args.mib, args.rootless)
        results["rootless: container → container"] = c2c
        results["rootless: published port (pasta → DNAT → container)"] = published
        results["pasta alone (host → pasta's namespace)"] = pasta_only(args.runs, args.mib, args.rootless)
        results["rootless podman: published port"] = podman_published(args.runs, args.mib, args.rootless)
    out = {"figure": "network", "results": results, "runs": args.runs, "mib": args.mib,
           "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(out, indent=2))
    if args.write:
        write_section(Path(args.write), out)


def write_section(path: Path, out: dict) -> None:
    from report import replace_section

    veth = out["results"]["raw veth pair"]["mib_s"]["median"]
    bridged = out["results"].get(BRIDGED, {}).get("mib_s", {}).get("median")
    lines = [f"Measured {out['date']}: {out['mib']} MiB streams and 2000 one-byte round trips, {out['runs']} runs "
             "each; medians (min–max). The same stdlib tool (tests/bench/netperf.py) runs at both ends of every "
             "path.", "",
             "| path | throughput MiB/s | vs raw veth | vs bridge + conntrack | round trip µs |",
             "|---|---:|---:|---:|---:|"]
    for name, r in out["results"].items():
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} | | | |")
            continue
        t, rt = r["mib_s"], r["rtt_us"]
        vs_bridged = f"{t['median'] / bridged:.0%}" if bridged else "–"
        lines.append(f"| {name} | {t['median']:.0f} ({t['min']:.0f}–{t['max']:.0f}) | {t['median'] / veth:.0%} | "
                     f"{vs_bridged} | {rt['median']:.0f} ({rt['min']:.0f}–{rt['max']:.0f}) |")
    replace_section(path, "network", lines)


if __name__ == "__main__":
    main()
