import pytest

from envtool.errors import SpecError
from envtool.stack import restart
from envtool.stack.graph import levels
from envtool.stack.health import HEALTHY, STARTING, UNHEALTHY, HealthState
from envtool.stack.plan import plan_up
from envtool.stack.spec import ContainerSpec, Health, Port, StackSpec, container_from_json, to_json


def spec(name, service, image="sha256:" + "a" * 64, argv=("x",), deps=()):
    return ContainerSpec(name=name, service=service, replica=1, image=image, layers=("/l",), argv=argv, env=(),
                         workdir="/", user="", capabilities=("CAP_CHOWN",), depends_on=deps,
                         health=Health(("true",), 1, 1, 3, 0), ports=(Port(None, 80, 8000),))


def test_levels_and_reverse():
    deps = {"web": {"api": "healthy"}, "api": {"db": "healthy", "cache": "started"}, "db": {}, "cache": {}}
    assert levels(deps) == [["cache", "db"], ["api"], ["web"]]
    with pytest.raises(SpecError, match="cycle"):
        levels({"a": {"b": 1}, "b": {"a": 1}})


def test_plan_creates_in_order_and_recreates_only_changed():
    db, web = spec("p-db-1", "db"), spec("p-web-1", "web", deps=(("db", "healthy"),))
    stack = StackSpec("p", "/d", None, [web, db])
    assert [(a.kind, a.container) for a in plan_up(stack, {})] == [("create", "p-db-1"), ("create", "p-web-1")]
    actual = {"p-db-1": {"hash": db.hash, "image": db.image, "status": "healthy", "service": "db"},
              "p-web-1": {"hash": "old", "image": web.image, "status": "running", "service": "web"},
              "p-gone-1": {"hash": "x", "status": "running", "service": "gone"}}
    kinds = {a.container: (a.kind, a.reason) for a in plan_up(stack, actual)}
    assert kinds["p-db-1"][0] == "keep"
    assert kinds["p-web-1"] == ("recreate", "configuration changed")
    assert kinds["p-gone-1"][0] == "remove"


def test_spec_hash_changes_with_content_and_round_trips():
    a = spec("p-a-1", "a")
    assert a.hash == spec("p-a-1", "a").hash != spec("p-a-1", "a", argv=("y",)).hash
    assert container_from_json(to_json(a)) == a


def test_health_state_machine():
    h = HealthState(retries=2, start_period=5)
    assert h.record(False, since_start=1) == STARTING          # failures in the start period don't count
    assert h.record(True, since_start=2) == HEALTHY
    assert h.record(False, since_start=10) == HEALTHY
    assert h.record(False, since_start=11) == UNHEALTHY
    assert h.record(True, since_start=12) == HEALTHY


def test_restart_policy_and_backoff():
    assert restart.should_restart("always", 0, False) and not restart.should_restart("always", 0, True)
    assert restart.should_restart("on-failure", 1, False) and not restart.should_restart("on-failure", 0, False)
    assert not restart.should_restart("no", 1, False)
    delays = [restart.backoff(n, ran_for=0.1) for n in range(12)]
    assert delays[0] == 0.1 and delays == sorted(delays) and delays[-1] == restart.MAX_DELAY
    assert restart.backoff(5, ran_for=60) == 0
