"""Runs inside a container as its root: freezes every process that appears in the container's pid
namespace (SIGSTOP), inspects it the way an attacker would, lets it go (SIGCONT) and writes what it
saw to /out/seen.jsonl, until /out/stop exists or 60 s pass.

A process of the host's that enters the container (exec, healthchecks) must already be
non-dumpable, under no_new_privs and seccomp and holding no fd of its parent's when it appears."""

import ctypes
import json
import os
import signal
import time

libc = ctypes.CDLL(None, use_errno=True)
SYS_PIDFD_OPEN, SYS_PIDFD_GETFD = 434, 438
me = os.getpid()
known = {1, me}
looks = {}
out = open("/out/seen.jsonl", "a", buffering=1)
open("/out/ready", "w").close()


def status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return {k: fields.get(k) for k in ("Name", "Seccomp", "NoNewPrivs", "CapPrm", "Uid")}


def fds_of(pid):
    try:
        return {n: os.readlink(f"/proc/{pid}/fd/{n}") for n in os.listdir(f"/proc/{pid}/fd")}
    except OSError as e:
        return f"errno {e.errno}"


def stolen_fds(pid):
    """pidfd_getfd of fds 3..63: what a container process can copy out of the visitor."""
    pidfd = libc.syscall(SYS_PIDFD_OPEN, pid, 0)
    if pidfd < 0:
        return []
    got = []
    try:
        for n in range(3, 64):
            fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, n, 0)
            if fd >= 0:
                got.append(os.readlink(f"/proc/self/fd/{fd}"))
                os.close(fd)
    finally:
        os.close(pidfd)
    return got


def foreign(fds, stdio):
    """What is not the container's own: sockets, event fds, pipes other than its stdio, files that
    do not exist in here (the dynamic loader's ld.so.cache and libc, just after exec, are ours)."""
    out = []
    for target in fds:
        if target.startswith(("socket:", "anon_inode:")) or (target.startswith("pipe:") and target not in stdio):
            out.append(target)
        elif target.startswith("/") and not os.path.exists(target):
            out.append(target)
    return out


deadline = time.monotonic() + 60
while time.monotonic() < deadline and not os.path.exists("/out/stop"):
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in known:
            continue
        pid = int(name)
        try:
            os.kill(pid, signal.SIGSTOP)
        except ProcessLookupError:
            continue
        try:
            for _ in range(200):            # until it has really stopped
                if status(pid).get("Name") is None or open(f"/proc/{pid}/stat").read().split(") ")[1][0] == "T":
                    break
            fds = fds_of(pid)
            stdio = {fds.get(n) for n in ("0", "1", "2")} if isinstance(fds, dict) else set()
            stolen = stolen_fds(pid)
            held = [t for n, t in fds.items() if n not in ("0", "1", "2")] if isinstance(fds, dict) else []
            record = {"pid": pid, **status(pid), "fds": fds, "stolen": stolen,
                      "foreign": foreign(stolen + held, stdio)}
            out.write(json.dumps(record) + "\n")
        except OSError:
            pass
        finally:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        # a process is looked at again while it lives (it may change between looks), but every
        # pid at most 20 times
        looks[pid] = looks.get(pid, 0) + 1
        if looks[pid] >= 20:
            known.add(pid)
