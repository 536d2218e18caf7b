"""Property: any envtool.toml document — random keys, random values, real keys with wrong shapes,
raw bytes — ends in a loaded project or a SpecError with a location, never another exception.
Projects that load are carried on through the pure stages after loading (the environment
overlays, the Kubernetes and Compose exports)."""

from __future__ import annotations

import tomllib

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envtool.errors import EnvtoolError, SpecError
from envtool.release import k8s
from envtool.release.compose_out import compose
from envtool.spec.load import load
from envtool.spec.model import Service

names = st.sampled_from(["web", "db", "api", "x", "Web", "1a", "a_b", "ünï", ""])
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.floats(allow_nan=False, width=32),
                    st.sampled_from(["", "1s", "256M", "8080:80", "redis", "healthy", "started", "completed",
                                     "no", "always", "on-failure", "SIGTERM", "./data:/data", "vol:/x:ro",
                                     "${HOME}", "${X:?boom}", "$$", "debian:bookworm", "scratch", "py",
                                     "127.0.0.1:80:80/udp", "-1", "0.5", "../escape:/x"]),
                    st.text(max_size=8))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["command", "interval", "retries", "memory", "cpus", "src", "dst", "path", "action",
                     "target", "redis", "x"]) | st.text(max_size=4), inner, max_size=3), max_leaves=8)
service = st.dictionaries(st.sampled_from(sorted(Service.model_fields) + ["portz", "build"]), values, max_size=6)
recipe = st.dictionaries(st.sampled_from(["from", "packages", "pip", "copy", "run", "env", "workdir", "user",
                                          "entrypoint", "cmd", "mirror", "variant", "froms"]), values, max_size=4)
document = st.fixed_dictionaries({}, optional={
    "project": st.dictionaries(st.sampled_from(["name", "subnet", "nam"]), values, max_size=2),
    "images": st.dictionaries(names, recipe, max_size=2),
    "services": st.dictionaries(names, service, max_size=3),
    "volumes": st.dictionaries(names, st.dictionaries(st.sampled_from(["labels", "x"]), values, max_size=1),
                               max_size=2),
    "environments": st.dictionaries(st.sampled_from(["staging", "prod"]), st.dictionaries(
        st.sampled_from(["services", "images"]), st.dictionaries(names, service, max_size=2), max_size=1),
        max_size=2),
    "extra": values,
})


def _strip_none(v):
    if isinstance(v, dict):
        return {str(k): _strip_none(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_strip_none(x) for x in v if x is not None]
    return v


def _check(tmp_path, text: str) -> None:
    (tmp_path / "envtool.toml").write_text(text)
    try:
        loaded = load(directory=tmp_path, environ={"HOME": "/root"})
    except SpecError as e:
        assert e.location is not None and e.location.file.endswith("envtool.toml"), e
        return
    project = loaded.project
    envs = {}
    for env in project.environments:
        try:
            envs[env] = load(directory=tmp_path, env=env, environ={"HOME": "/root"}).project
        except SpecError as e:
            assert e.location is not None, e
            return
    digests = {s.image: "sha256:" + "0" * 64 for s in project.services.values()}
    try:
        k8s.export(project, envs, digests, "localhost:5000")
        compose(project, digests, "localhost:5000")
    except EnvtoolError:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(document)
def test_any_document_loads_or_fails_with_a_location(tmp_path, doc):
    _check(tmp_path, tomli_w.dumps(_strip_none(doc)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.sampled_from(list('[]{}="\'.,#\n :\\') + list("abcsrvie123$")), max_size=80))
def test_any_text_loads_or_fails_with_a_location(tmp_path, text):
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        pass
    _check(tmp_path, text)
