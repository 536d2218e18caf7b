"""Bundles without root: a store in a temporary directory, a small image, every kind of damage."""

from __future__ import annotations

import io
import tarfile

import pytest

from envtool.image import oci
from envtool.image.layer import LayerWriter
from envtool.image.store import Layer, Store
from envtool.release.bundle import BundleError, Release, frozen_config, read, write


@pytest.fixture
def made(tmp_path):
    store = Store(tmp_path / "a")
    src = tmp_path / "f.txt"
    src.write_bytes(b"x" * 200_000)
    w = LayerWriter(0)
    w.add_path("f.txt", str(src))
    buf = io.BytesIO()
    w.write(buf)
    digest = store.put_bytes(buf.getvalue())
    image = store.write_image(oci.ImageConfig(cmd=("true",)), [Layer(digest, digest, len(buf.getvalue()),
                                                                     oci.LAYER_TAR)], "1970-01-01T00:00:00Z")
    stack = {"base": {"project": {"name": "p"}, "services": {"a": {"image": "i"}}},
             "environments": {"staging": {"project": {"name": "p"}, "services": {"a": {"image": "i", "replicas": 2}}}}}
    release = Release("p", stack, b"version = 1\n", {"i": image.manifest_digest})
    return store, release, tmp_path


@pytest.mark.parametrize("compress", [True, False])
def test_round_trip_into_another_store(made, compress):
    store, release, tmp = made
    rid = write(release, store, tmp / "b.bundle", compress)
    other = Store(tmp / "b")
    got = read(tmp / "b.bundle", other)
    assert got.id == rid == release.id
    assert got.config_for("staging")["services"]["a"]["replicas"] == 2
    assert other.image(release.images["i"]).config.cmd == ("true",)
    with pytest.raises(BundleError, match="no environment 'prod'"):
        got.config_for("prod")


def test_the_id_covers_every_part(made):
    _, release, _ = made
    changed = Release("p", release.stack, b"version = 1\n# x\n", release.images)
    assert changed.id != release.id
    other_image = Release("p", release.stack, release.lock, {"i": "sha256:" + "0" * 64})
    assert other_image.id != release.id


def _rewrite(src, dst, change):
    with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
        for m in tin.getmembers():
            data = change(m.name, tin.extractfile(m).read())
            if data is None:
                continue
            m.size = len(data)
            tout.addfile(m, io.BytesIO(data))


@pytest.mark.parametrize(("label", "change", "message"), [
    ("layer", lambda n, d: d[:-5000] + bytes([d[-5000] ^ 1]) + d[-4999:] if len(d) > 100_000 else d,
     "does not match its digest"),
    ("stack", lambda n, d: d.replace(b'"replicas":2', b'"replicas":3') if n == "stack.json" else d,
     "does not describe"),
    ("lock", lambda n, d: d + b"#" if n == "envtool.lock" else d, "does not describe"),
    ("missing blob", lambda n, d: None if n.startswith("blobs/") and len(d) > 100_000 else d, "is missing"),
    ("extra file", lambda n, d: d, None),
])
def test_damage_is_refused(made, label, change, message):
    store, release, tmp = made
    write(release, store, tmp / "ok.bundle", compress=False)
    bad = tmp / "bad.bundle"
    _rewrite(tmp / "ok.bundle", bad, change)
    if message is None:                                   # an entry nobody asked for
        with tarfile.open(bad, "a") as t:
            info = tarfile.TarInfo("../../etc/evil")
            t.addfile(info, io.BytesIO(b""))
        message = "unexpected entry"
    with pytest.raises(BundleError, match=message):
        read(bad, Store(tmp / "c"))


def test_not_a_bundle(made):
    _, _, tmp = made
    (tmp / "junk").write_bytes(b"\x1f\x8b not gzip at all")
    with pytest.raises(BundleError, match="not a readable bundle"):
        read(tmp / "junk", Store(tmp / "d"))


def test_env_files_fold_into_environment():
    cfg = {"services": {"a": {"env_file": [".env"], "environment": {"A": "svc"}}}, "environments": {}}
    out = frozen_config(cfg, {"a": {"A": "file", "B": "file"}})
    assert out == {"services": {"a": {"environment": {"A": "svc", "B": "file"}}}}
