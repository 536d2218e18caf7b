"""Hole 4: containers reached the host's 127.0.0.1 services (route_localnet=1 without a drop rule,
CVE-2020-8558); hole 11: another project's containers could query this project's DNS."""

import ipaddress
import socket

import pytest

from .conftest import arm

pytestmark = pytest.mark.root


def _udp(host: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, 0))
    s.settimeout(2.0)
    return s


def test_a_container_cannot_reach_the_hosts_loopback(stack):
    stack.write(f"""
[services.app]
image = "py"
command = ["sleep", "600"]
volumes = ["{arm(stack.dir)}"]
""")
    stack.cli("up", "-d", check=True)
    ip = next(iter(stack.ps().values()))["ip"]
    gateway = str(next(ipaddress.ip_network(f"{ip}/24", strict=False).hosts()))
    victim, control = _udp("127.0.0.1"), _udp(gateway)
    try:
        out = stack.cli("exec", "app", "python3", "/attack/localnet.py", str(victim.getsockname()[1]),
                        str(control.getsockname()[1]))
        assert out.returncode == 0, out.stderr
        assert control.recv(100) == b"to-gateway", "the crafted frames did not arrive at all"
        with pytest.raises(TimeoutError):
            got = victim.recv(100)
            pytest.fail(f"the host's 127.0.0.1 received {got!r} from a container")
    finally:
        victim.close()
        control.close()


def _dns_query(name: str) -> bytes:
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + qname + b"\x00\x01\x00\x01"


def test_another_project_cannot_query_this_projects_dns(stack, tmp_path, envtool_env):
    from tests.integration.stack.conftest import Stack

    stack.write("""
[services.secretdb]
image = "py"
command = ["sleep", "600"]
""")
    stack.cli("up", "-d", check=True)
    ip_a = next(iter(stack.ps().values()))["ip"]
    gateway_a = str(next(ipaddress.ip_network(f"{ip_a}/24", strict=False).hosts()))
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other = Stack(other_dir, envtool_env, stack.name + "b")
    other.write("""
[services.probe]
image = "py"
command = ["sleep", "600"]
""")
    try:
        other.cli("up", "-d", check=True)
        script = ("import socket, sys\n"
                  "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1.5)\n"
                  f"s.sendto(bytes.fromhex('{_dns_query('secretdb').hex()}'), ('{gateway_a}', 53))\n"
                  "try: print(s.recv(512).hex())\n"
                  "except TimeoutError: print('timeout')\n")
        own = stack.cli("exec", "secretdb", "python3", "-c", script, check=True)
        assert own.stdout.strip() != "timeout", "the project's own container got no DNS answer"
        answer = ipaddress.ip_address(bytes.fromhex(own.stdout.strip()[-8:]))     # the service address
        assert answer in ipaddress.ip_network(f"{ip_a}/24", strict=False), own.stdout
        theirs = other.cli("exec", "probe", "python3", "-c", script, check=True)
        assert theirs.stdout.strip() == "timeout", f"project B was answered by A's DNS: {theirs.stdout}"
    finally:
        other.cli("down", "--volumes")
