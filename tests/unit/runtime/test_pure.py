"""Capabilities, users, config validation, the seccomp profile: pure logic."""

import pytest

from envtool._util.linux import DEFAULT_CAPABILITIES
from envtool.errors import InputError
from envtool.runtime.caps import effective_set, mask, names
from envtool.runtime.config import ContainerConfig, Limits
from envtool.runtime.seccomp import default_profile
from envtool.runtime.users import UnknownUser, resolve_user


def test_docker_default_capability_mask():
    assert mask(DEFAULT_CAPABILITIES) == 0xA80425FB
    assert names(0xA80425FB) == sorted(DEFAULT_CAPABILITIES, key=lambda c: mask([c]))


def test_cap_add_drop():
    caps = effective_set(add=["net_admin"], drop=["CAP_NET_RAW", "mknod"])
    assert "CAP_NET_ADMIN" in caps and "CAP_NET_RAW" not in caps and "CAP_MKNOD" not in caps
    assert effective_set(drop=["ALL"], add=["CHOWN"]) == {"CAP_CHOWN"}
    assert "CAP_SYS_ADMIN" in effective_set(add=["ALL"])


PASSWD = "root:x:0:0:root:/root:/bin/bash\napp:x:999:998::/srv/app:/bin/sh\n"
GROUP = "root:x:0:\napp:x:998:\nweb:x:33:app,other\n"


@pytest.mark.parametrize(("spec", "expected"), [
    ("", (0, 0, (0,), "/root")), ("app", (999, 998, (998, 33), "/srv/app")),
    ("999", (999, 998, (998, 33), "/srv/app")), ("1234", (1234, 1234, (1234,), "/")),
    ("app:web", (999, 33, (33,), "/srv/app")), ("1234:5", (1234, 5, (5,), "/")),
])
def test_resolve_user(spec, expected):
    u = resolve_user(spec, PASSWD, GROUP)
    assert (u.uid, u.gid, u.groups, u.home) == expected


def test_unknown_user():
    with pytest.raises(UnknownUser, match="nobody"):
        resolve_user("nobody", PASSWD, GROUP)


def cfg(**kw):
    base = dict(name="t", layers=("/l",), state_dir="/s", argv=("true",))
    base.update(kw)
    return ContainerConfig(**base)


@pytest.mark.parametrize(("kw", "message"), [
    ({"argv": ()}, "no command"), ({"layers": ()}, "no layers"), ({"workdir": "rel"}, "must be absolute"),
    ({"capabilities": frozenset({"CAP_NOPE"})}, "unknown capabilities"),
    ({"limits": Limits(memory=1024)}, "below the 6M minimum"),
])
def test_config_refuses_impossible_settings(kw, message):
    with pytest.raises(InputError, match=message):
        cfg(**kw)


def test_seccomp_profile_follows_capabilities():
    plain = default_profile(DEFAULT_CAPABILITIES)
    assert "mount" not in plain.allowed and "clone3" not in plain.allowed and "unshare" not in plain.allowed
    assert "arch_prctl" in plain.allowed and "chroot" in plain.allowed
    admin = default_profile(set(DEFAULT_CAPABILITIES) | {"CAP_SYS_ADMIN"})
    assert {"mount", "unshare", "clone3"} <= set(admin.allowed) and admin.clone_any
    assert "chroot" not in default_profile(set(DEFAULT_CAPABILITIES) - {"CAP_SYS_CHROOT"}).allowed


def test_heeds_reads_the_caught_signal_mask_of_pid_1(tmp_path):
    from envtool.runtime.launcher import heeds

    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "status").write_text("Name:\tpython3\nSigIgn:\t0000000001001000\nSigCgt:\t0000000180000002\n")
    assert not heeds(7, 15, str(tmp_path))      # SIGTERM: no handler (python as PID 1)
    assert heeds(7, 2, str(tmp_path))           # SIGINT: python's KeyboardInterrupt handler
    (tmp_path / "8").mkdir()
    (tmp_path / "8" / "status").write_text("Name:\ttini\nSigCgt:\t000000007fffdeff\n")
    assert heeds(8, 15, str(tmp_path))          # an init catches (and forwards) it
    assert heeds(9, 15, str(tmp_path))          # unreadable: wait out the grace period, as before
    (tmp_path / "10").mkdir()                   # tini waiting in rt_sigtimedwait: no handler, nothing blocked
    (tmp_path / "10" / "status").write_text("Name:\tinit\nSigBlk:\t0000000000000000\nSigCgt:\t0000000000000000\n")
    (tmp_path / "10" / "syscall").write_text("128 0x7ffd5 0x7ffd6 0x7ffd7 0x8 0x0 0x0 0x7ffd 0x7f12\n")
    import os
    assert heeds(10, 15, str(tmp_path)) == (os.uname().machine == "x86_64")
    (tmp_path / "10" / "syscall").write_text("running\n")
    assert not heeds(10, 15, str(tmp_path))
    (tmp_path / "11").mkdir()                   # blocked: queued until it is taken
    (tmp_path / "11" / "status").write_text("Name:\tx\nSigBlk:\t0000000000004000\nSigCgt:\t0000000000000000\n")
    assert heeds(11, 15, str(tmp_path))
