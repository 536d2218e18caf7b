"""network/netlink.py against the kernel, in a network namespace of the test's own (`unshare -n`:
the bridge, the pairs and the containers' namespaces vanish with that process)."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.root

SCRIPT = textwrap.dedent("""
    import json, os, subprocess, sys
    sys.path.insert(0, sys.argv[1])
    from envtool.errors import HostError
    from envtool.network.netlink import Netlink, mac_for
    from envtool.runtime.namespaces import new_netns

    def ip(*args, fd=None):
        cmd = ["ip", "-j", *args]
        if fd is not None:
            cmd = ["nsenter", f"--net=/proc/{os.getpid()}/fd/{fd}", *cmd]
        return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout or "[]")

    out = {}
    host = Netlink()
    host.ensure_bridge("et-t", "10.77.0.1", 24)
    fd, inner = new_netns(Netlink)
    host.add_veth("et-tv", "et-t", fd, "10.77.0.2")
    inner.configure_inside("eth0", "10.77.0.2", 25, "10.77.0.1")
    inner.close()
    [veth] = ip("link", "show", "et-tv")
    out["first"] = {"master": veth.get("master"), "up": "UP" in veth["flags"]}
    [eth0] = ip("addr", "show", "eth0", fd=fd)
    [lo] = ip("link", "show", "lo", fd=fd)
    out["inside"] = {"mac": eth0["address"] == mac_for("10.77.0.2"), "up": "UP" in eth0["flags"],
                     "addr": [f"{a['local']}/{a['prefixlen']}" for a in eth0["addr_info"] if a["family"] == "inet"],
                     "lo": "UP" in lo["flags"], "route": [r.get("gateway") for r in ip("route", "show", "default", fd=fd)]}
    # the container's next instance: the old pair still holds the name (its netns is alive)
    fd2, inner2 = new_netns(Netlink)
    host.add_veth("et-tv", "et-t", fd2, "10.77.0.3")
    inner2.close()
    out["replaced"] = {"old_peer_gone": not [l for l in ip("link", "show", fd=fd) if l["ifname"] == "eth0"],
                       "new_peer": [l["address"] for l in ip("link", "show", "eth0", fd=fd2)] == [mac_for("10.77.0.3")],
                       "master": [l.get("master") for l in ip("link", "show", "et-tv")]}
    try:
        host.add_veth("et-tw", "et-missing", fd2, "10.77.0.4")
    except HostError as e:
        out["no_bridge"] = str(e)
    print(json.dumps(out))
""")


def test_veth_pairs_on_a_bridge_and_a_leftover_pair_replaced(tmp_path):
    if not shutil.which("unshare") or not shutil.which("nsenter"):
        pytest.skip("util-linux unshare/nsenter not installed")
    script = tmp_path / "veth.py"
    script.write_text(SCRIPT)
    proc = subprocess.run(["unshare", "-n", sys.executable, str(script), str(REPO)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["first"] == {"master": "et-t", "up": True}
    assert out["inside"] == {"mac": True, "up": True, "addr": ["10.77.0.2/25"], "lo": True, "route": ["10.77.0.1"]}
    assert out["replaced"] == {"old_peer_gone": True, "new_peer": True, "master": ["et-t"]}
    assert out["no_bridge"] == "create veth et-tw: no bridge et-missing"
