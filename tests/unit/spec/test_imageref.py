"""The one image-reference parser."""

import pytest

from envtool.spec.imageref import ImageRef, InvalidImageRef

D = "sha256:" + "ab" * 32


def test_kinds():
    assert ImageRef.parse("py").is_recipe
    assert ImageRef.parse(D).kind == "digest" and ImageRef.parse(D).digest == D
    arch = ImageRef.parse("oci-archive:dist/app.tar")
    assert arch.kind == "oci-archive" and arch.path == "dist/app.tar" and arch.name == "app.tar"


def test_registry_references():
    r = ImageRef.parse(f"localhost:5000/team/app:1.2@{D}")
    assert (r.registry, r.repository, r.tag, r.digest, r.name) == ("localhost:5000", "team/app", "1.2", D, "app")
    assert r.without_digest() == "localhost:5000/team/app:1.2" and r.pinned(D) == f"localhost:5000/team/app@{D}"
    q = ImageRef.parse("quay.io/prometheus/node-exporter")
    assert q.registry == "quay.io" and q.tag is None


def test_docker_hub_short_names_normalise_as_docker_does():
    r = ImageRef.parse("redis:7")
    assert r.kind == "registry" and r.registry is None and r.name == "redis"
    assert r.normalized().text == "docker.io/library/redis:7"
    assert ImageRef.parse("bitnami/redis").normalized().text == "docker.io/bitnami/redis:latest"
    assert ImageRef.parse(f"postgres@{D}").normalized().text == f"docker.io/library/postgres@{D}"


@pytest.mark.parametrize("bad", ["UPPER:1", "a//b:1", "localhost:5000/", "x:y:z", "a b:1"])
def test_invalid(bad):
    with pytest.raises(InvalidImageRef):
        ImageRef.parse(bad)


def test_a_docker_hub_short_name_is_pulled_from_docker_hub():
    from envtool.image.sources.registry import parse_ref

    ref = parse_ref("redis:7")
    assert (ref.registry, ref.repository, ref.tag) == ("docker.io", "library/redis", "7")
    assert ref.base == "https://registry-1.docker.io/v2/library/redis"
    assert parse_ref("bitnami/redis").base == "https://registry-1.docker.io/v2/bitnami/redis"
    assert parse_ref("localhost:5000/team/app:1").base == "http://localhost:5000/v2/team/app"
