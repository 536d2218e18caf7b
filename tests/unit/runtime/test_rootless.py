"""Rootless parts that need no namespace: subordinate ranges, pasta's command line, the delegated
cgroup, which commands join the session, where an ordinary user's files go."""

import os
from pathlib import Path

from envtool.cli.app import command_of
from envtool.runtime import rootless
from envtool.runtime.cgroups import NoCgroups, delegated
from envtool.runtime.cgroups.v2 import V2Manager


def test_subordinate_range_by_name_or_uid_and_big_enough(tmp_path):
    f = tmp_path / "subuid"
    f.write_text("other:100000:65536\nalice:165536:1000\nalice:300000:65536\n1005:400000:70000\n")
    assert rootless.subid_range(str(f), "alice", 1001) == (300000, 65536)      # the small one is skipped
    assert rootless.subid_range(str(f), "bob", 1005) == (400000, 70000)
    assert rootless.subid_range(str(f), "carol", 1006) is None
    assert rootless.subid_range(str(tmp_path / "missing"), "alice", 1001) is None
    assert rootless.free_range(str(f)) == "470000-535535"                   # past every range (for the hint)
    assert rootless.free_range(str(tmp_path / "missing")) == "100000-165535"


def test_pasta_binds_exactly_the_published_ports_on_their_addresses():
    args = rootless.pasta_args(42, [(None, 8080, "tcp"), ("127.0.0.1", 5432, "tcp"), ("0.0.0.0", 5353, "udp")],
                               "/run/p.pid")
    assert args[:2] == ["pasta", "-f"]
    assert "--no-map-gw" in args and args[args.index("-T") + 1] == "none" and args[args.index("-U") + 1] == "none"
    tcp = [args[i + 1] for i, a in enumerate(args) if a == "-t"]
    udp = [args[i + 1] for i, a in enumerate(args) if a == "-u"]
    assert sorted(tcp) == ["127.0.0.1/5432", "8080"] and udp == ["5353"]
    assert args[-4:] == ["--userns", "/proc/42/ns/user", "--netns", "/proc/42/ns/net"]
    nothing = rootless.pasta_args(42, [], "/run/p.pid")
    assert nothing[nothing.index("-t") + 1] == "none" and nothing[nothing.index("-u") + 1] == "none"


def _tree(tmp_path: Path, writable_from: int) -> tuple[Path, Path, Path]:
    root = tmp_path / "cg"
    parts = ["user.slice", "user-1000.slice", "user@1000.service", "app.slice", "term.scope"]
    path = root
    for i, p in enumerate([""] + parts):
        path = path / p if p else path
        path.mkdir(exist_ok=True)
        (path / "cgroup.controllers").write_text("cpu memory pids\n")
        (path / "cgroup.subtree_control").write_text("")
        if i < writable_from:
            (path / "cgroup.subtree_control").chmod(0o444)
        elif os.geteuid() == 0:                   # root may write anything: ownership tells instead
            os.chown(path, 12345, 12345)
    mounts = tmp_path / "mounts"
    mounts.write_text(f"cgroup2 {root} cgroup2 rw,nosuid 0 0\n")
    me = tmp_path / "self"
    me.write_text("0::/" + "/".join(parts) + "\n")
    return root, mounts, me


def test_delegated_subtree_is_the_topmost_writable_one(tmp_path):
    root, mounts, me = _tree(tmp_path, writable_from=3)
    m = delegated(str(mounts), str(me), owner=12345 if os.geteuid() == 0 else None)
    assert isinstance(m, V2Manager) and m.root == str(root / "user.slice/user-1000.slice/user@1000.service")


def test_no_delegation_means_no_limits_and_says_why(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text("cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n")
    m = delegated(str(mounts), str(tmp_path / "self"))
    assert isinstance(m, NoCgroups) and not m.enforces and "cgroup v2" in m.why
    root, mounts, me = _tree(tmp_path, writable_from=99)
    m = delegated(str(mounts), str(me), owner=123456)           # nothing of ours
    assert isinstance(m, NoCgroups) and "delegated" in m.why


def test_which_commands_join_the_session():
    assert command_of(["-C", "shop", "up", "-d"]) == "up"
    assert command_of(["--debug", "-p", "x", "exec", "web", "sh"]) == "exec"
    assert command_of(["--version"]) is None
    assert command_of(["-f", "up", "config"]) == "config"       # a file named "up"


def test_an_ordinary_users_files(monkeypatch, tmp_path):
    monkeypatch.delenv(rootless.MARK, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert rootless.default_root() == tmp_path / "data" / "envtool"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert rootless.default_root() == tmp_path / "home" / ".local/share/envtool"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert rootless.run_dir() == tmp_path / "envtool"
    monkeypatch.setenv(rootless.MARK, "/run/user/7/envtool")          # joined: what the joiner chose
    assert rootless.run_dir() == Path("/run/user/7/envtool") and rootless.active()


def test_an_ordinary_users_stacks_keep_their_state_in_the_run_dir(monkeypatch, tmp_path):
    from envtool.stack.state import Paths, projects_dir

    monkeypatch.setenv(rootless.MARK, str(tmp_path / "run"))
    one, two = projects_dir(tmp_path / "a"), projects_dir(tmp_path / "b")
    assert one.parent.parent == tmp_path / "run" / "stores" and one != two         # one directory per store
    assert Paths.for_project(tmp_path / "a", "shop").socket == one / "shop" / "control.sock"
    monkeypatch.delenv(rootless.MARK)
    if os.geteuid() == 0:
        assert projects_dir(tmp_path / "a") == tmp_path / "a" / "projects"           # root: in the store
