"""cgroup writers against a tmpdir standing in for cgroupfs (youki's libcgroups test fixture)."""

import os

from envtool.runtime.cgroups import detect
from envtool.runtime.cgroups.v1 import V1Manager
from envtool.runtime.cgroups.v2 import V2Manager
from envtool.runtime.config import Limits


def test_v2_writes_limits_and_enables_controllers(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids io\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    cg = V2Manager(str(tmp_path)).create("envtool/run/c1", Limits(memory=64 << 20, cpus=0.5, pids=100))
    d = tmp_path / "envtool/run/c1"
    assert (d / "memory.max").read_text() == str(64 << 20)
    assert (d / "cpu.max").read_text() == "50000 100000"
    assert (d / "pids.max").read_text() == "100"
    assert "+memory" in (tmp_path / "cgroup.subtree_control").read_text()
    assert cg.procs_files() == [str(d / "cgroup.procs")]
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert cg.oom_kills() == 1


def test_v1_writes_per_controller(tmp_path):
    mounts = {c: str(tmp_path / c) for c in ("memory", "pids", "cpu")}
    for m in mounts.values():
        os.makedirs(m)
    cg = V1Manager(mounts).create("envtool/run/c1", Limits(memory=32 << 20, cpus=1.5, pids=10))
    assert (tmp_path / "memory/envtool/run/c1/memory.limit_in_bytes").read_text() == str(32 << 20)
    assert (tmp_path / "cpu/envtool/run/c1/cpu.cfs_quota_us").read_text() == "150000"
    assert (tmp_path / "pids/envtool/run/c1/pids.max").read_text() == "10"
    assert len(cg.procs_files()) == 3
    (tmp_path / "memory/envtool/run/c1/memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert cg.oom_kills() == 2


def test_detect_prefers_v2_with_memory_and_falls_back_to_v1(tmp_path):
    unified = tmp_path / "unified"
    unified.mkdir()
    (unified / "cgroup.controllers").write_text("hugetlb\n")
    mounts = tmp_path / "mounts"
    mounts.write_text(f"cgroup2 {unified} cgroup2 rw 0 0\ncgroup {tmp_path}/memory cgroup rw,memory 0 0\n")
    assert detect(str(mounts)).version == 1
    (unified / "cgroup.controllers").write_text("cpu memory pids\n")
    assert detect(str(mounts)).version == 2
