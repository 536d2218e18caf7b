"""Mount ordering and error handling, proven against the recording double (no root needed)."""

import errno

import pytest

from envtool._util.linux import DEFAULT_CAPABILITIES
from envtool.errors import SyscallError
from envtool.runtime.child import ChildContext, setup_container
from envtool.runtime.config import BindMount, ContainerConfig
from envtool.runtime.setup import apply_setup, setup_ops
from envtool.runtime.syscalls import CLONE_NEWNET, CLONE_NEWNS, MS_RDONLY, MS_REMOUNT, RecordingSyscalls


def make_config(**kw) -> ContainerConfig:
    base = dict(name="t", layers=("/l0", "/l1"), state_dir="/s", argv=("true",), hostname="box",
                capabilities=frozenset(DEFAULT_CAPABILITIES))
    base.update(kw)
    return ContainerConfig(**base)


def run_setup(cfg, rec=None):
    rec = rec or RecordingSyscalls()
    apply_setup(setup_ops(cfg), rec)
    return rec


def mount_targets(rec):
    return [args[1] for args in rec.ops("mount")]


def test_rootfs_first_with_topmost_layer_first():
    rec = run_setup(make_config())
    source, target, fstype, flags, data = rec.ops("mount")[0]
    assert (target, fstype) == ("/s/rootfs", "overlay")
    assert data == "lowerdir=/l1:/l0,upperdir=/s/upper,workdir=/s/work"


def test_masked_paths_come_after_proc_and_sys():
    targets = mount_targets(run_setup(make_config()))
    assert targets.index("/s/rootfs/proc") < targets.index("/s/rootfs/proc/keys")
    assert targets.index("/s/rootfs/sys") < targets.index("/s/rootfs/sys/firmware")
    assert targets.index("/s/rootfs/proc") < targets.index("/s/rootfs/proc/sys")


def test_devices_are_created_on_the_dev_tmpfs():
    rec = run_setup(make_config())
    order = [(op, args[0] if op == "mknod" else args[1]) for op, args in rec.calls if op in ("mount", "mknod")]
    assert order.index(("mount", "/s/rootfs/dev")) < order.index(("mknod", "/s/rootfs/dev/null"))
    assert {a[0] for a in rec.ops("mknod")} >= {"/s/rootfs/dev/" + d for d in ("null", "zero", "urandom", "tty")}


def test_read_only_volume_is_remounted_after_bind():
    rec = run_setup(make_config(mounts=(BindMount("/host/data", "/data", True),)))
    binds = [a for a in rec.ops("mount") if a[1] == "/s/rootfs/data"]
    assert binds[0][0] == "/host/data"
    assert binds[1][3] & (MS_REMOUNT | MS_RDONLY) == MS_REMOUNT | MS_RDONLY


def test_read_only_rootfs_is_remounted_after_every_submount():
    rec = run_setup(make_config(read_only=True))
    last = rec.ops("mount")[-1]
    assert last[1] == "/s/rootfs" and last[3] & MS_RDONLY


def test_targets_are_resolved_inside_the_root():
    rec = run_setup(make_config(mounts=(BindMount("/h", "/etc/../data", False),)))
    resolved = [a[0] for a in rec.ops("open_in_root")]
    assert all(p.startswith("/s/rootfs") for p in resolved)


def test_failed_mount_names_the_operation_and_path():
    rec = RecordingSyscalls(fail_at={"mount:/s/rootfs/proc": errno.EPERM})
    with pytest.raises(SyscallError, match=r"mount proc on /proc.*operation not permitted"):
        run_setup(make_config(), rec)


def test_missing_masked_path_is_skipped():
    rec = RecordingSyscalls(fail_at={"open_in_root:/s/rootfs/proc/kcore": errno.ENOENT})
    run_setup(make_config(), rec)
    assert "/s/rootfs/proc/kcore" not in mount_targets(rec)


def child_calls(cfg, **files):
    rec = RecordingSyscalls(files={"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
                                   "/etc/group": "root:x:0:\napp:x:1000:\nstaff:x:50:app\n"})
    ctx = ChildContext(("/cg/cgroup.procs",), b"\0" * 16, report_fd=99)
    step = [""]
    user = setup_container(cfg, ctx, rec, step)
    return rec, user, step


def test_child_privilege_drop_order():
    rec, user, step = child_calls(make_config())
    ops = [op for op, _ in rec.calls]
    # cgroup join before the namespaces; pivot after every mount; caps before no_new_privs; seccomp last
    assert ops.index("write_file") < ops.index("unshare")
    assert ops.index("pivot_root") > max(i for i, op in enumerate(ops) if op == "mount" and i < ops.index("pivot_root"))
    assert ops.index("drop_bounding") < ops.index("set_user") < ops.index("capset")
    assert ops.index("capset") < ops.index("set_no_new_privs") < ops.index("seccomp_load")
    assert ops[-1] == "cloexec_from"
    assert step == ["exec"]
    flags = rec.ops("unshare")[0][0]
    assert flags & CLONE_NEWNS and flags & CLONE_NEWNET


def test_child_non_root_user_gets_no_capset_and_supplementary_groups():
    rec, user, _ = child_calls(make_config(user="app"))
    assert rec.ops("set_user") == [(1000, 1000, (1000, 50))]
    assert rec.ops("capset") == []
    assert user.home == "/home/app"


def test_child_joins_a_given_netns_without_new_one(tmp_path):
    ns = tmp_path / "ns"
    ns.write_text("")
    rec, _, _ = child_calls(make_config(netns=str(ns)))
    assert not rec.ops("unshare")[0][0] & CLONE_NEWNET
    assert rec.ops("setns")
    assert rec.ops("link_up") == []


def test_child_failure_reports_its_step():
    rec = RecordingSyscalls(fail_at={"pivot_root": errno.EINVAL})
    step = [""]
    with pytest.raises(SyscallError):
        setup_container(make_config(), ChildContext((), None, 99), rec, step)
    assert step == ["pivot_root"]
