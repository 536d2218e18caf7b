"""Hole 9: a bundle's integrity check is self-referential — anyone can edit stack.json and digest it
again — so `up --bundle` must run every check `validate` runs before anything starts."""

import gzip
import io
import json
import tarfile

import pytest

pytestmark = pytest.mark.root


def _forge(good: str, bad: str, edit) -> None:
    """Rewrite a bundle with its stack edited and every digest made to match again."""
    from envtool._util.digest import canonical_json
    from envtool.release.bundle import Release

    with tarfile.open(good, "r:*") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]
    parts = {m.name: data for m, data in members}
    doc, stack = json.loads(parts["release.json"]), json.loads(parts["stack.json"])
    edit(stack)
    rel = Release(doc["project"], stack, parts["envtool.lock"], doc["images"], doc.get("files"))
    parts["release.json"], parts["stack.json"] = canonical_json(rel.document), rel.stack_bytes
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as out:
        for m, _ in members:
            data = parts[m.name]
            m.size = len(data)
            out.addfile(m, io.BytesIO(data))
    with open(bad, "wb") as f:
        f.write(gzip.compress(buf.getvalue()))


def test_a_redigested_bundle_that_binds_a_host_path_is_refused(stack, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("the host's file\n")
    stack.write("""
[services.app]
image = "py"
command = ["sleep", "600"]
""")
    stack.cli("lock", check=True, timeout=600)
    made = stack.cli("bundle", "-o", str(tmp_path / "good.bundle"), "--json", timeout=600)
    assert made.returncode == 0, made.stderr

    def bind_the_victim(s):
        for config in [s["base"], *s.get("environments", {}).values()]:
            config["services"]["app"]["volumes"] = [f"{victim}:/host"]
            config["services"]["app"]["command"] = ["sh", "-c", "rm -f /host/precious; sleep 600"]

    _forge(str(tmp_path / "good.bundle"), str(tmp_path / "bad.bundle"), bind_the_victim)
    up = stack.cli("up", "-d", "--bundle", str(tmp_path / "bad.bundle"))
    assert up.returncode == 2, up.stderr + up.stdout
    assert "bad.bundle" in up.stderr and "services.app.volumes" in up.stderr and "escapes" in up.stderr
    assert (victim / "precious").exists()
    assert stack.cli("ps", "--json").stdout.strip() in ("", "[]")
