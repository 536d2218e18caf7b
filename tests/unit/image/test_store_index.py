"""The store's index.json: a tag that is already so is not written again (`up` tags every image
it uses; an index of many images took ~50 ms to rewrite each time)."""

from envtool.image import oci
from envtool.image.store import Layer, Store


def image_of(store: Store, blob: bytes):
    """An image of one (opaque) layer blob: the index cares about manifests, not layer contents."""
    digest = store.put_bytes(blob)
    return store.write_image(oci.ImageConfig(cmd=("true",)), [Layer(digest, digest, len(blob), oci.LAYER_TAR)],
                             "1970-01-01T00:00:00Z")


def test_the_same_tag_again_leaves_the_index_alone(tmp_path):
    store = Store(tmp_path)
    a, b = image_of(store, b"a"), image_of(store, b"b")
    store.tag("p/x:latest", a)
    index = store.layout / "index.json"
    before = index.stat()
    store.tag("p/x:latest", a)
    after = index.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    store.tag("p/x:latest", b)                                # moved: written
    assert index.stat().st_ino != before.st_ino
    assert store.resolve("p/x:latest") == b.manifest_digest
    moved = index.stat()
    store.tag("p/x:latest", b, {"org.example.note": "1"})     # other annotations: written
    assert index.stat().st_ino != moved.st_ino
    assert [n for n, _, _ in store.tags()] == ["p/x:latest"]
