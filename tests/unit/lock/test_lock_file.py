from envtool.lock import io as lock_io
from envtool.lock.drift import drift, recipe_digest, spec_digest
from envtool.lock.model import Lock, LockedImage, LockedPackage
from envtool.spec.model import ImageRecipe


def recipe(**kw):
    return ImageRecipe.model_validate({"from": "debian:bookworm", **kw})


def test_round_trip_and_stable_text(tmp_path):
    r = recipe(packages=["python3"])
    lock = Lock(spec=spec_digest({"py": r}), images={"py": LockedImage(
        digest="sha256:" + "a" * 64, config="sha256:" + "b" * 64, layers=["sha256:" + "c" * 64],
        source="debian:bookworm", recipe=recipe_digest(r),
        packages=[LockedPackage(name="python3", version="3.11.2-1+b1", arch="amd64", sha256="d" * 64)])})
    path = tmp_path / "envtool.lock"
    lock_io.write(path, lock)
    first = path.read_text()
    assert lock_io.read(path) == lock
    lock_io.write(path, lock_io.read(path))
    assert path.read_text() == first
    assert '[[images.py.packages]]\nname = "python3"\nversion = "3.11.2-1+b1"' in first


def test_drift_names_the_changed_image():
    a, b = recipe(packages=["python3"]), recipe(packages=["redis-server"])
    lock = Lock(images={"a": LockedImage(digest="x", config="y", layers=[], source="s", recipe=recipe_digest(a))})
    assert drift({"a": a}, lock) == []
    changed = drift({"a": recipe(packages=["python3", "curl"]), "b": b}, lock)
    assert [(d.image, d.reason) for d in changed] == [
        ("a", "its recipe changed since envtool.lock was written"), ("b", "not in envtool.lock")]


def test_unsupported_version_is_refused(tmp_path):
    import pytest

    from envtool.errors import SpecError

    (tmp_path / "envtool.lock").write_text("version = 9\n")
    with pytest.raises(SpecError, match="version 9 is not supported"):
        lock_io.read(tmp_path / "envtool.lock")
