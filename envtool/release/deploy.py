"""`envtool deploy ssh://[user@]host[:port]`: a release to another host over the system's OpenSSH
client (the user's keys, known_hosts and ~/.ssh/config; BatchMode, so never a password prompt).

    1. `envtool remote-have` there: which of the release's blobs its store holds already
    2. a *thin* bundle (bundle.write(skip=…)): the release, its stack and lock, and only the blobs
       the host lacks, streamed to `envtool remote-receive` there
    3. the host verifies every part against the release id (what it held already is re-hashed
       too), refuses anything altered before it changes anything, and runs it as `up -d --bundle`
       does, start-first replacement and the deployment record included; secrets are read there

ENVTOOL_SSH replaces the ssh command (e.g. "ssh -i key -o UserKnownHostsFile=…"), as
GIT_SSH_COMMAND does for git; --remote-envtool (ENVTOOL_REMOTE) names envtool on the host."""

from __future__ import annotations

import os
import re
import shlex

from envtool._util.record import dataclass
from envtool.errors import InputError, RuntimeFailure


class DeployError(RuntimeFailure):
    code = "deploy-failed"


@dataclass(frozen=True)
class Target:
    user: str | None
    host: str
    port: int | None

    def __str__(self) -> str:
        return f"{self.user + '@' if self.user else ''}{self.host}{f':{self.port}' if self.port else ''}"


_URL = re.compile(r"^ssh://(?:(?P<user>[A-Za-z0-9._-]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)"
                  r"(?::(?P<port>[0-9]{1,5}))?/?$")


def parse_target(url: str) -> Target:
    m = _URL.match(url)
    if m is None or m["host"].startswith("-") or (m["user"] or "").startswith("-"):
        raise InputError(f"{url!r} is not a host to deploy to",
                         hint="write ssh://[user@]host[:port], e.g. ssh://deploy@staging.internal")
    port = int(m["port"]) if m["port"] else None
    if port is not None and not 0 < port < 65536:
        raise InputError(f"{url!r}: port {port} is out of range", hint="a port from 1 to 65535")
    return Target(m["user"], m["host"].strip("[]"), port)


def ssh_argv(target: Target, remote: list[str], args: list[str]) -> list[str]:
    """The local command that runs `remote args…` on the target (one shell word each there)."""
    base = shlex.split(os.environ.get("ENVTOOL_SSH") or "ssh")
    return [*base, "-o", "BatchMode=yes", *(["-p", str(target.port)] if target.port else []),
            f"{target.user + '@' if target.user else ''}{target.host}", "--",
            " ".join(shlex.quote(a) for a in [*remote, *args])]


def remote_command(given: str | None) -> list[str]:
    return shlex.split(given or os.environ.get("ENVTOOL_REMOTE") or "envtool")


def failure(target: Target, returncode: int, stderr: str, remote: list[str]) -> DeployError:
    """One clear error for what ssh or the remote envtool said."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error")]
    if errors:                                          # the remote envtool refused: its own words
        hint = next((ln.removeprefix("hint:").strip() for ln in lines if ln.startswith("hint:")), None)
        return DeployError(f"{target}: {errors[0]}", hint=hint)
    last = lines[-1] if lines else f"exit {returncode}"
    if returncode == 255:
        if "Permission denied" in stderr or "Too many authentication failures" in stderr:
            return DeployError(f"{target} refused the SSH key: {last}",
                               hint="add your public key to the host's ~/.ssh/authorized_keys, or name the key "
                                    "with IdentityFile in ~/.ssh/config")
        if "Host key verification failed" in stderr:
            return DeployError(f"{target}: its host key is not the one in known_hosts: {last}",
                               hint="check the host, then update ~/.ssh/known_hosts")
        return DeployError(f"cannot reach {target} over SSH: {last}",
                           hint="check the address, the port and that sshd runs there")
    if returncode == 127 or "command not found" in stderr or "No such file or directory" in stderr:
        return DeployError(f"{target} has no envtool: `{' '.join(remote)}` is not there ({last})",
                           hint="install envtool on the host, or name it with --remote-envtool")
    return DeployError(f"{target}: the remote envtool failed: {last}")
