"""Runs inside a container and reports what it sees, as JSON (crun's tests/init.c, youki's runtimetest).

usage: python3 /probe/probe.py [check ...]   (no checks = the standard report)
"""

import ctypes
import errno
import json
import os
import socket
import sys


def status() -> dict:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def try_call(fn) -> str:
    try:
        fn()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def libc_call(name: str, *args) -> str:
    libc = ctypes.CDLL(None, use_errno=True)
    ret = getattr(libc, name)(*args)
    return "ok" if ret >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")


def report() -> dict:
    st = status()
    with open("/proc/self/mounts") as f:
        mounts = [line.split()[:4] for line in f]
    return {
        "pid": os.getpid(),
        "uid": os.getuid(),
        "gid": os.getgid(),
        "hostname": socket.gethostname(),
        "cwd": os.getcwd(),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "CapEff": st.get("CapEff"), "CapBnd": st.get("CapBnd"), "CapPrm": st.get("CapPrm"),
        "NoNewPrivs": st.get("NoNewPrivs"), "Seccomp": st.get("Seccomp"),
        "mounts": mounts,
        "env": dict(os.environ),
        "fds": sorted(int(n) for n in os.listdir("/proc/self/fd")),
        "links": sorted(os.listdir("/sys/class/net")),
    }


CHECKS = {
    "mount": lambda: libc_call("mount", b"tmpfs", b"/mnt", b"tmpfs", 0, None),
    "unshare_user": lambda: libc_call("unshare", 0x10000000),
    "write_proc_sys": lambda: try_call(lambda: open("/proc/sys/kernel/hostname", "w").write("x")),
    "write_sys": lambda: try_call(lambda: open("/sys/kernel/uevent_helper", "w").write("x")),
    "raw_socket": lambda: try_call(lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()),
    "clone3": lambda: libc_call("syscall", 435, None, 0),
    "thread": lambda: _thread(),
    "kcore": lambda: try_call(lambda: open("/proc/kcore", "rb").read(1)),
    "keys": lambda: _read("/proc/keys"),
    "sethostname": lambda: try_call(lambda: socket.sethostname("evil")),
    "mknod": lambda: try_call(lambda: os.mknod("/tmp/sda", 0o600 | 0o060000, os.makedev(8, 0))),
    "write_root": lambda: try_call(lambda: open("/probe-write-test", "w").write("x")),
    "ptrace_init": lambda: libc_call("ptrace", 16, 1, None, None),
    "load_module": lambda: libc_call("syscall", 313, -1, b"", 0),             # finit_module
    "ptrace_host": lambda: libc_call("ptrace", 16, int(os.environ["PROBE_TARGET"]), None, None),
    "kill_host": lambda: try_call(lambda: os.kill(int(os.environ["PROBE_TARGET"]), 0)),
    "mknod_open": lambda: try_call(lambda: _mknod_open("/tmp/nulldev")),
    "mknod_dev": lambda: try_call(lambda: os.mknod("/dev/nulldev", 0o666 | 0o020000, os.makedev(1, 3))),
    "see_path": lambda: "exists" if os.path.exists(os.environ["PROBE_PATH"]) else "absent",
}


def _mknod_open(path: str) -> None:
    """A character device made where the container may write (here the null device) must not open."""
    os.mknod(path, 0o666 | 0o020000, os.makedev(1, 3))
    open(path, "rb").close()


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return "content:" + f.read()[:40]
    except OSError as e:
        return errno.errorcode.get(e.errno, "?")


def _thread() -> str:
    import threading

    seen = []
    t = threading.Thread(target=lambda: seen.append(1))
    t.start()
    t.join()
    return "ok" if seen else "failed"


if __name__ == "__main__":
    names = sys.argv[1:]
    print(json.dumps({n: CHECKS[n]() for n in names} if names else report()))
