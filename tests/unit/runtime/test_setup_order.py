"""Mount ordering and error handling, proven against the recording double (no root needed)."""

import errno

import pytest

from envtool._util.linux import DEFAULT_CAPABILITIES
from envtool.errors import SyscallError
from envtool.runtime.child import ChildContext, setup_container
from envtool.runtime.config import BindMount, ContainerConfig
from envtool.runtime.setup import apply_setup, setup_ops
from envtool.runtime.syscalls import (
    CLONE_NEWCGROUP,
    CLONE_NEWNET,
    CLONE_NEWNS,
    MOUNT_ATTR_NODEV,
    MOUNT_ATTR_NOSUID,
    MOUNT_ATTR_RDONLY,
    MS_RDONLY,
    RecordingSyscalls,
)


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


def test_bind_sources_are_opened_at_start_and_locked_down_recursively():
    """Hole 2 and 6: the source is opened (refusing symlinks, beneath the project) by the child at
    every start and its whole tree bound with nodev/nosuid (and ro) on every mount in it."""
    rec = run_setup(make_config(mounts=(BindMount("/proj/data", "/data", True, "/proj"),
                                        BindMount("/proj/app", "/app", False, "/proj"))))
    assert rec.ops("open_bind_source") == [("/proj/data", "/proj"), ("/proj/app", "/proj")]
    binds = rec.ops("bind_tree")
    assert [(s, t) for s, t, _ in binds] == [("/proj/data", "/s/rootfs/data"), ("/proj/app", "/s/rootfs/app")]
    ro, rw = binds[0][2], binds[1][2]
    assert ro == MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID
    assert rw == MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID
    assert not [a for a in rec.ops("mount") if a[0] in ("/proj/data", "/proj/app")]   # never by path


def test_a_bind_source_that_became_a_symlink_stops_the_start():
    rec = RecordingSyscalls(fail_at={"open_bind_source:/proj/data": errno.ELOOP})
    with pytest.raises(SyscallError):
        run_setup(make_config(mounts=(BindMount("/proj/data", "/data", False, "/proj"),)), rec)
    assert rec.ops("bind_tree") == []


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
    ctx = ChildContext(98, b"\0" * 16, report_fd=99)
    step = [""]
    user = setup_container(cfg, ctx, rec, step)
    return rec, user, step


def test_child_privilege_drop_order():
    rec, user, step = child_calls(make_config())
    ops = [op for op, _ in rec.calls]
    # the parent moves the child into its cgroup while the child mounts: the child waits for that
    # before its cgroup namespace (whose root the cgroup becomes) and before anything it writes
    assert rec.ops("write_file") == []
    unshares = [flags for (flags,) in rec.ops("unshare")]
    assert not unshares[0] & CLONE_NEWCGROUP and unshares[1] == CLONE_NEWCGROUP
    assert ops.index("pivot_root") < ops.index("await_placement") < ops.index("sethostname")
    assert ops[ops.index("await_placement") + 1] == "unshare"
    # pivot after every mount; caps before no_new_privs; seccomp last
    after_pivot = ops[ops.index("pivot_root") + 1:]
    assert "mount" not in after_pivot and "bind_tree" not in after_pivot
    # nothing of the parent's is reachable before anything else happens: not dumpable, fds closed
    assert ops[:2] == ["set_dumpable", "close_fds_except"] and rec.ops("set_dumpable") == [(False,)]
    assert rec.ops("close_fds_except") == [((98, 99),)]
    assert ops.index("drop_bounding") < ops.index("set_user") < ops.index("capset")
    assert ops.index("capset") < ops.index("set_no_new_privs") < ops.index("seccomp_load")
    assert ops[-1] == "cloexec_from"
    assert step == ["exec"]
    flags = rec.ops("unshare")[0][0]
    assert flags & CLONE_NEWNS and flags & CLONE_NEWNET


def test_child_writes_secrets_only_once_in_its_cgroup():
    """tmpfs pages are charged to the writer's memory cgroup: the secrets wait for the placement."""
    from envtool.runtime.config import SecretFile

    rec, _, _ = child_calls(make_config(secrets=(SecretFile("db", b"pw"),)))
    ops = [op for op, _ in rec.calls]
    assert ops.index("await_placement") < ops.index("write_secret")


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
        setup_container(make_config(), ChildContext(None, None, 99), rec, step)
    assert step == ["pivot_root"]


def test_entering_process_is_confined_before_the_container_can_see_it():
    """Hole 1: the middle process (in the host's pid namespace) makes itself non-dumpable and closes
    every fd of its parent's before it joins anything, and loads no_new_privs and seccomp before the
    fork that makes a process visible in the container's pid namespace."""
    import os

    from envtool.runtime import enter

    rec = RecordingSyscalls(files={"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\n", "/etc/group": "root:x:0:\n"})
    spec = enter.EnterSpec(pid=1, argv=("true",), env=(), workdir="/", user="", capabilities=frozenset(),
                           cgroup_procs=("/cg/cgroup.procs",), seccomp_bpf=b"\0" * 16)
    r, w = os.pipe()
    forks = []

    class Forked(Exception):
        pass

    def fake_fork():
        forks.append([op for op, _ in rec.calls])
        raise Forked

    real_fork, real_exit = os.fork, os._exit
    os.fork, os._exit = fake_fork, lambda code: (_ for _ in ()).throw(SystemExit(code))
    try:
        with pytest.raises(SystemExit):
            enter._middle(spec, [], w, None, rec)
    finally:
        os.fork, os._exit = real_fork, real_exit
        os.close(r)
    before_fork = forks[0]
    assert before_fork[:2] == ["set_dumpable", "close_fds_except"]
    assert before_fork.index("close_fds_except") < before_fork.index("write_file")     # before the cgroup
    assert before_fork[-2:] == ["set_no_new_privs", "seccomp_load"]
    assert rec.ops("close_fds_except") == [((w,),)]
