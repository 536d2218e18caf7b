"""The lock that serialises choosing a subnet: never a file someone else could hold or point
elsewhere (a planted symlink is not followed, a file of another owner is not used)."""

from __future__ import annotations

import os

import pytest

from envtool.network import project


def _lock_path(d) -> str:
    return os.path.join(d, f"subnets-{os.stat('/proc/self/ns/net').st_ino}.lock")


def test_the_lock_file_is_made_in_the_users_own_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(project, "LOCK_DIR", str(tmp_path / "run"))
    with project.subnet_lock():
        assert os.path.exists(_lock_path(tmp_path / "run"))
    assert (os.stat(tmp_path / "run").st_mode & 0o777) == 0o700


def test_a_planted_symlink_is_not_followed(tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    os.symlink(victim, _lock_path(run))
    monkeypatch.setattr(project, "LOCK_DIR", str(run))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    assert project._subnet_lock_fd() is None
    with project.subnet_lock():               # goes on without a lock rather than through the link
        pass
    assert not victim.exists()


def test_a_directory_of_another_owner_is_not_used(tmp_path, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("only root can give a directory away")
    other = tmp_path / "other"
    other.mkdir(mode=0o777)
    os.chown(other, 65534, 65534)
    monkeypatch.setattr(project, "LOCK_DIR", str(tmp_path / "none"))
    (tmp_path / "none").write_text("")          # not a directory: skipped
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(other))
    assert project._subnet_lock_fd() is None
    assert os.listdir(other) == []
