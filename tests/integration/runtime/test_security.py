"""What a container must not be able to do to its host (Docker's defaults and then some).
The hostile-layer cases are in tests/unit/image/test_extract_hostile.py and the fuzzer beside it;
the CVE reproductions are in test_run.py."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.root


def test_no_host_processes_or_mounts_are_visible(probe, store_root):
    r = probe()
    assert r["pids"] == [1, r["pid"]] or set(r["pids"]) <= {1, 2, r["pid"]}
    assert not [m for m in r["mounts"] if m[1].startswith(("/var/tmp", "/home", "/work", store_root))]


def test_cannot_load_modules_mount_or_write_kernel_settings(probe):
    r = probe("load_module", "mount", "write_proc_sys", "write_sys", "kcore")
    assert r["load_module"] == "EPERM"
    assert r["mount"] == "EPERM"
    assert r["write_proc_sys"] == "EROFS"
    assert r["write_sys"] in ("EROFS", "EACCES")
    assert r["kcore"] in ("EACCES", "EPERM", "ENOENT")


def test_device_nodes_it_makes_cannot_be_opened(probe, tmp_path):
    """CAP_MKNOD is in Docker's default set; without a device cgroup (cgroup v2 has none without BPF)
    a node for the host's disk would be readable. Writable filesystems are nodev and /dev is read-only."""
    r = probe("mknod_open", "mknod_dev")
    assert r["mknod_open"] == "EACCES"
    assert r["mknod_dev"] == "EROFS"
    vol = tmp_path / "vol"
    vol.mkdir()
    r = probe("mknod_open", opts=("-v", f"{vol}:/tmp"))
    assert r["mknod_open"] == "EACCES"


def test_cannot_trace_or_signal_a_host_process(probe):
    me = str(os.getpid())
    r = probe("ptrace_host", "kill_host", opts=("-e", f"PROBE_TARGET={me}"))
    assert r["ptrace_host"] in ("ESRCH", "EPERM")      # the host's pids do not exist in here
    assert r["kill_host"] in ("ESRCH", "EPERM")


def test_cannot_reach_the_store_or_any_control_socket(probe, store_root):
    r = probe("see_path", opts=("-e", f"PROBE_PATH={store_root}/projects"))
    assert r["see_path"] == "absent"
