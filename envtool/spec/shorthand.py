"""Short syntax → canonical tables (pure).

ports:   "[ip:]host:container[/tcp|udp]", "8000" (random host port), "8000-8001:80-81" is not supported
volumes: "name:/path[:ro|rw]", "./rel:/path[:ro]", "/abs:/path" (must stay inside the project), "/path" (anonymous)
environment: {K = "v"} or ["K=v", "K"] (a bare K takes the host value)
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

_PORT_RE = re.compile(
    r"^(?:(?P<ip>\[[0-9a-fA-F:.]+\]|\d+\.\d+\.\d+\.\d+):)?(?:(?P<host>\d+)?:)?(?P<ctr>\d+)(?:/(?P<proto>tcp|udp))?$"
)


def _port_number(text: str, what: str, allow_zero: bool = False) -> int:
    n = int(text)
    if not (0 if allow_zero else 1) <= n <= 65535:
        raise ValueError(f"{what} {n} is out of range 1-65535")
    return n


def parse_port(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return {"target": _port_number(str(value), "container port")}
    if not isinstance(value, str):
        return value
    m = _PORT_RE.match(value.strip())
    if not m:
        raise ValueError(f"invalid port {value!r}: use [ip:]host:container[/tcp|udp], e.g. \"8080:80\"")
    out: dict[str, Any] = {"target": _port_number(m["ctr"], "container port"),
                           "protocol": m["proto"] or "tcp"}
    if m["host"] is not None:
        out["published"] = _port_number(m["host"], "host port")
    if m["ip"]:
        ip = m["ip"].strip("[]")
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise ValueError(f"invalid port {value!r}: {ip!r} is not an IP address") from None
        out["host_ip"] = ip
        if m["host"] is None:
            raise ValueError(f"invalid port {value!r}: an address needs a host port, e.g. \"{ip}:8080:80\"")
    return out


def parse_volume(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    parts = value.split(":")
    mode = None
    if len(parts) == 3:
        mode = parts[2]
        parts = parts[:2]
    if len(parts) == 1:
        if not parts[0].startswith("/"):
            raise ValueError(f"invalid volume {value!r}: an anonymous volume needs an absolute container path")
        return {"type": "volume", "target": parts[0]}
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise ValueError(f"invalid volume {value!r}: use source:target[:ro]")
    source, target = parts
    if mode not in (None, "ro", "rw"):
        raise ValueError(f"invalid volume {value!r}: mode must be ro or rw, not {mode!r}")
    if not target.startswith("/"):
        raise ValueError(f"invalid volume {value!r}: the container path must be absolute")
    is_bind = source.startswith((".", "/", "~"))
    return {"type": "bind" if is_bind else "volume", "source": source, "target": target,
            "read_only": mode == "ro"}


def parse_environment(value: Any, host_env: dict[str, str] | None = None) -> Any:
    if not isinstance(value, list):
        return value
    out: dict[str, str] = {}
    for item in value:
        if not isinstance(item, str):
            raise ValueError(f"invalid environment entry {item!r}: use \"KEY=value\"")
        key, sep, val = item.partition("=")
        if not key:
            raise ValueError(f"invalid environment entry {item!r}: empty name")
        if sep:
            out[key] = val
        elif host_env is not None and key in host_env:
            out[key] = host_env[key]
    return out


def parse_command(value: Any) -> Any:
    """A string command is run by /bin/sh -c, as in Compose's shell form."""
    if isinstance(value, str):
        return ["/bin/sh", "-c", value]
    return value
