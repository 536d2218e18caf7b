"""Resolve a container user spec against the image's /etc/passwd and /etc/group (pure)."""

from __future__ import annotations

from envtool._util.record import dataclass


@dataclass(frozen=True)
class User:
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


class UnknownUser(ValueError):
    pass


def _table(text: str) -> list[list[str]]:
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def resolve_user(spec: str, passwd: str, group: str) -> User:
    """'' → root; 'name', 'uid', 'name:group', 'uid:gid' → ids, supplementary groups and home."""
    users, groups = _table(passwd), _table(group)
    name, _, grp = (spec or "0").partition(":")
    entry = next((u for u in users if len(u) >= 6 and (u[0] == name or (name.isdigit() and u[2] == name))),
                 None)
    if entry is not None:
        uid, gid, home, username = int(entry[2]), int(entry[3]), entry[5] or "/", entry[0]
    elif name.isdigit():
        uid, gid, home, username = int(name), int(name) if not grp else 0, "/", ""
    else:
        raise UnknownUser(f"unknown user {name!r}: not in the image's /etc/passwd")
    if grp:
        g = next((g for g in groups if len(g) >= 3 and (g[0] == grp or (grp.isdigit() and g[2] == grp))), None)
        if g is not None:
            gid = int(g[2])
        elif grp.isdigit():
            gid = int(grp)
        else:
            raise UnknownUser(f"unknown group {grp!r}: not in the image's /etc/group")
    extra = sorted({int(g[2]) for g in groups if len(g) >= 4 and username and username in g[3].split(",")}
                   - {gid})
    return User(uid, gid, (gid, *extra), home)
