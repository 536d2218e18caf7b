"""The promotion rule, pure."""

from __future__ import annotations

import pytest

from envtool.errors import SpecError
from envtool.release.history import (
    Current,
    PromotionRefused,
    append_release,
    decide_promotion,
    read_releases,
    stack_healthy,
)

REL = "sha256:" + "1" * 64
ENVS = ["staging", "production"]


def record(healthy_at: str | None = "2026-11-24T10:00:00Z", env: str = "staging", lock: str = "sha256:l") -> dict:
    return {"release": REL, "env": env, "lock": lock, "images": {"py": "sha256:i"}, "deployed_at": "t",
            "healthy_at": healthy_at}


def test_the_deployed_healthy_release_is_promoted():
    got = decide_promotion(Current(REL, "staging", True, True), [record()], "staging", "production", "sha256:l", ENVS)
    assert got["release"] == REL


def test_healthy_once_is_enough_even_if_not_now():
    got = decide_promotion(Current(REL, "staging", True, False), [record()], "staging", "production", "sha256:l", ENVS)
    assert got["release"] == REL


@pytest.mark.parametrize(("current", "history", "lock", "message"), [
    (Current(REL, "staging", True, False), [record(healthy_at=None)], "sha256:l", "never healthy"),
    (Current(REL, "staging", False, False), [record()], "sha256:l", "no stack is running"),
    (Current(REL, "production", True, True), [record()], "sha256:l", "runs environment 'production'"),
    (Current(REL, "staging", True, True), [record(env="production")], "sha256:l", "no deployment record"),
    (Current(REL, "staging", True, True), [record()], "sha256:other", "envtool.lock changed"),
])
def test_refusals(current, history, lock, message):
    with pytest.raises(PromotionRefused, match=message):
        decide_promotion(current, history, "staging", "production", lock, ENVS)


def test_unknown_target_environment_is_bad_input():
    with pytest.raises(SpecError, match="no environment 'prod'"):
        decide_promotion(Current(REL, "staging", True, True), [record()], "staging", "prod", "sha256:l", ENVS)


def test_stack_health():
    assert not stack_healthy([])
    assert stack_healthy([{"status": "running", "health": None}, {"status": "healthy", "health": "healthy"},
                          {"status": "exited", "exit_code": 0}])
    assert not stack_healthy([{"status": "running", "health": "starting"}])
    assert not stack_healthy([{"status": "exited", "exit_code": 1}])


def test_releases_file_appends(tmp_path):
    append_release(tmp_path, {"release": REL, "from": "staging", "to": "production"})
    append_release(tmp_path, {"release": REL, "from": "production", "to": "dr"})
    assert [e["to"] for e in read_releases(tmp_path)] == ["production", "dr"]
    assert (tmp_path / "envtool.releases.toml").read_text().startswith("# envtool.releases.toml")


def test_a_release_without_the_target_environment_is_refused():
    rec = {**record(), "environments": ["staging"]}
    with pytest.raises(PromotionRefused, match=r"holds no 'production' environment \(only staging\)") as e:
        decide_promotion(Current(REL, "staging", True, True), [rec], "staging", "production", "sha256:l", ENVS)
    assert "envtool bundle -e production -e staging" in e.value.hint
    rec["environments"] = ["production", "staging"]
    assert decide_promotion(Current(REL, "staging", True, True), [rec], "staging", "production", "sha256:l",
                            ENVS)["release"] == REL


def test_rollback_target_is_the_latest_other_release_or_the_one_named():
    from envtool.release.history import recent_releases, rollback_target

    recs = [{"release": f"sha256:{c * 64}", "env": "production"} for c in "abab"] + \
        [{"release": "sha256:" + "c" * 64, "env": "staging"}]
    assert rollback_target(recs, "sha256:" + "c" * 64, None) is recs[3]
    assert rollback_target(recs, "sha256:" + "b" * 64, None) is recs[4]
    assert rollback_target(recs, None, "aaaaaaaa") is recs[2]          # a prefix of 8 or more
    assert rollback_target(recs, None, "aaaa") is None                 # too short to be sure
    assert rollback_target(recs[:1], "sha256:" + "a" * 64, None) is None
    assert recent_releases(recs, 2) == ["sha256:" + "c" * 64, "sha256:" + "b" * 64]
