"""Ordered steps: plan order, cache keys that stay as they were for recipes not using new keys."""

import pytest

from envtool.errors import UsageError
from envtool.image.recipe import Copy, Run, copy_sources, plan_recipe, step_key
from envtool.lock.drift import recipe_digest
from envtool.spec.model import ImageRecipe


def recipe(**kw):
    return ImageRecipe.model_validate({"from": "debian:bookworm", **kw})


def test_shorthand_keys_come_first_then_steps_in_order():
    plan = plan_recipe("app", recipe(
        pip=["flask"], copy=[{"src": "a", "dst": "/a"}], run=["echo r"],
        steps=[{"run": "mkdir /x", "workdir": "/w"}, {"copy": {"src": "b", "dst": "/b/", "from": "tool"}},
               {"copy": [{"src": "c", "dst": "/c"}, {"src": "d", "dst": "/d"}]}]))
    assert [s.describe() for s in plan.steps] == [
        "pip install flask", "copy a → /a", "run echo r", "run mkdir /x (in /w)", "copy tool:b → /b/",
        "copy c → /c", "copy d → /d"]
    assert copy_sources(plan) == ["tool"]


def test_one_pip_step_per_image():
    with pytest.raises(UsageError, match="more than one pip step"):
        plan_recipe("app", recipe(pip=["a"], steps=[{"pip": ["b"]}]))


@pytest.mark.parametrize("step, message", [
    ({}, "exactly one of run, copy or pip"),
    ({"run": "x", "pip": ["y"]}, "this one has run and pip"),
    ({"copy": {"src": "a", "dst": "/a"}, "workdir": "/w"}, "workdir belongs to a run step"),
    ({"run": "x", "workdir": "rel"}, "absolute"),
])
def test_bad_steps(step, message):
    with pytest.raises(ValueError, match=message):
        recipe(steps=[step])


def test_keys_and_digests_unchanged_for_recipes_without_new_keys():
    """A recipe written before steps/copy-from existed keeps its lock's recipe digest and its
    cached steps' keys (the new fields are left out while unset)."""
    old = recipe(copy=[{"src": "a", "dst": "/a"}], run=["echo"])
    doc = old.model_dump(mode="json", by_alias=True)
    doc.pop("steps")
    doc["copy"][0].pop("from")
    from envtool._util.digest import canonical_json, sha256_bytes
    assert recipe_digest(old) == sha256_bytes(canonical_json(doc))
    key = step_key("p", Copy("a", "/a"))
    assert key == step_key("p", Copy("a", "/a", None, None, None))
    assert step_key("p", Run("x")) != step_key("p", Run("x", workdir="/w"))
    assert step_key("p", Copy("a", "/a")) != step_key("p", Copy("a", "/a", source="tool"))
