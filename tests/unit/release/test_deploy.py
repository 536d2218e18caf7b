"""deploy's pure parts: the host URL, the ssh command line, and one clear error per failure."""

import pytest

from envtool.errors import InputError
from envtool.release import deploy as dep


def test_host_urls():
    assert dep.parse_target("ssh://deploy@staging.internal") == dep.Target("deploy", "staging.internal", None)
    assert dep.parse_target("ssh://10.0.0.5:2222/") == dep.Target(None, "10.0.0.5", 2222)
    assert dep.parse_target("ssh://root@[::1]:22") == dep.Target("root", "::1", 22)
    for bad in ("staging", "ssh://", "ssh://host:99999", "ssh://-oProxyCommand=x", "http://host", "ssh://a b",
                "ssh://-oProxyCommand@host"):
        with pytest.raises(InputError):
            dep.parse_target(bad)


def test_the_remote_command_is_one_quoted_string(monkeypatch):
    monkeypatch.setenv("ENVTOOL_SSH", "ssh -i /k/id -o UserKnownHostsFile=/k/known")
    argv = dep.ssh_argv(dep.Target("root", "127.0.0.1", 2222), ["env", "ENVTOOL_ROOT=/srv/a b", "envtool"],
                        ["remote-receive", "--env", "staging; rm -rf /"])
    assert argv[:5] == ["ssh", "-i", "/k/id", "-o", "UserKnownHostsFile=/k/known"]
    assert argv[5:11] == ["-o", "BatchMode=yes", "-p", "2222", "root@127.0.0.1", "--"]
    assert argv[-1] == "env 'ENVTOOL_ROOT=/srv/a b' envtool remote-receive --env 'staging; rm -rf /'"


def test_failures_say_what_went_wrong():
    t = dep.Target("root", "h", 22)
    e = dep.failure(t, 255, "root@h: Permission denied (publickey).\n", ["envtool"])
    assert "refused the SSH key" in e.message and "authorized_keys" in (e.hint or "")
    e = dep.failure(t, 255, "ssh: connect to host h port 22: Connection refused\n", ["envtool"])
    assert e.message.startswith("cannot reach root@h:22 over SSH") and "Connection refused" in e.message
    e = dep.failure(t, 127, "bash: line 1: envtool: command not found\n", ["envtool"])
    assert "has no envtool" in e.message and "--remote-envtool" in (e.hint or "")
    e = dep.failure(t, 2, "error[bundle-invalid]: deploy: blob sha256:ab does not match its digest: the bundle "
                          "was altered\n  hint: refusing to run it\n", ["envtool"])
    assert "the bundle was altered" in e.message and e.hint == "refusing to run it"
