"""debian:<suite> bases, built with mmdebstrap (the only place that runs it).

Package sources default to the host's own apt configuration (its Debian entries, with the suite
swapped for the requested one); `mirror = "<url>"` in a recipe, or ENVTOOL_DEBIAN_MIRROR, overrides
them.  With SOURCE_DATE_EPOCH fixed, mmdebstrap writes bit-identical tarballs for the same packages.

Packages' maintainer scripts run during the build, and a repository can be hostile.  mmdebstrap's
root mode runs them with a plain chroot as the host's root, which any of them can leave.  So envtool
never runs it as root: it runs mmdebstrap as an unprivileged build user in `--mode=unshare`, where the
scripts run as root of a user namespace mapped to that user's subordinate ids, and can touch nothing
on the host that an unprivileged user could not.  mmdebstrap's tarballs are bit-identical in both
modes.  As root, envtool creates the user `envtool-build` with a subordinate id range the first time
(as Docker creates `dockremap` for userns-remap); ENVTOOL_BUILD_USER names another.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from envtool._util.record import dataclass
from envtool.errors import BuildError, HostError, UsageError

APT_DIR = "/etc/apt"
DPKG_VARIANTS = ("essential", "apt", "required", "minbase", "buildd", "important", "standard")


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    arch: str
    sha256: str = ""              # of the .deb, as apt verified it


# what the customize hook runs in the new root: every installed package with its .deb's SHA256
# from apt's own index (read before mmdebstrap cleans the lists)
PACKAGE_QUERY = ("chroot \"$1\" sh -c 'dpkg-query -W -f=\"\\${binary:Package}=\\${Version}\\n\" "
                 "| xargs -r apt-cache show --no-all-versions' > ")


def parse_packages(text: str) -> list[Package]:
    out = []
    for stanza in text.split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            key, sep, value = line.partition(": ")
            if sep and not line.startswith(" "):
                fields[key] = value.strip()
        if "Package" in fields:
            out.append(Package(fields["Package"], fields.get("Version", ""), fields.get("Architecture", ""),
                               fields.get("SHA256", "")))
    return sorted(set(out), key=lambda p: (p.name, p.arch))


def pin_preferences(pins: dict[str, str]) -> str:
    """apt preferences that make apt choose exactly the locked versions."""
    return "".join(f"Package: {name}\nPin: version {version}\nPin-Priority: 1001\n\n"
                   for name, version in sorted(pins.items()))


def host_codename(os_release: str = "/etc/os-release") -> str | None:
    try:
        with open(os_release) as f:
            for line in f:
                if line.startswith("VERSION_CODENAME="):
                    return line.split("=", 1)[1].strip().strip('"') or None
    except OSError:
        pass
    return None


def _deb822_stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key: str | None = None
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                stanzas.append(current)
            current, key = {}, None
        elif line[0] in " \t" and key:
            current[key] += "\n" + line.strip()
        else:
            key, _, value = line.partition(":")
            current[key.strip()] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def _one_line_entries(text: str) -> list[dict[str, str]]:
    out = []
    for line in text.splitlines():
        m = re.match(r"^\s*deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s*(.*)$", line)
        if m:
            opts = m.group(1) or ""
            entry = {"Types": "deb", "URIs": m.group(2), "Suites": m.group(3),
                     "Components": m.group(4) or "main"}
            signed = re.search(r"signed-by=(\S+?)[\s\]]", opts + " ")
            if signed:
                entry["Signed-By"] = signed.group(1)
            out.append(entry)
    return out


def host_sources(suite: str, apt_dir: str = APT_DIR, codename: str | None = None) -> str:
    """The host's Debian apt entries rewritten for `suite`, as deb822 text."""
    codename = codename or host_codename()
    entries: list[dict[str, str]] = []
    base = Path(apt_dir)
    files = [base / "sources.list"] + sorted((base / "sources.list.d").glob("*"))
    for f in files:
        try:
            text = f.read_text()
        except OSError:
            continue
        if f.suffix == ".sources":
            entries += [s for s in _deb822_stanzas(text) if "deb" in s.get("Types", "").split()]
        elif f.suffix == ".list" or f.name == "sources.list":
            entries += _one_line_entries(text)
    out = []
    for e in entries:
        suites = e.get("Suites", "").split()
        keep = [s for s in suites if codename and (s == codename or s.startswith(codename + "-"))]
        if not keep or codename is None:
            continue
        stanza = {"Types": "deb", "URIs": e["URIs"], "Suites": " ".join(suite + s[len(codename):] for s in keep),
                  "Components": e.get("Components", "main")}
        if "Signed-By" in e and "\n" not in e["Signed-By"]:
            stanza["Signed-By"] = e["Signed-By"]
        out.append("\n".join(f"{k}: {v}" for k, v in stanza.items()))
    if not out:
        raise HostError(f"no Debian apt sources for {suite!r} found in {apt_dir}",
                        hint='set mirror = "<url of a Debian mirror>" in the image recipe, '
                             "or the ENVTOOL_DEBIAN_MIRROR environment variable")
    return "\n\n".join(out) + "\n"


def sources_for(suite: str, mirror: str | None) -> str:
    mirror = mirror or os.environ.get("ENVTOOL_DEBIAN_MIRROR")
    if mirror:
        from envtool.spec.model import check_mirror

        try:
            check_mirror(mirror)          # the recipe's was checked at load; the variable's is here
        except ValueError as e:
            raise UsageError(f"invalid Debian mirror {mirror!r}: {e}",
                             hint="set ENVTOOL_DEBIAN_MIRROR (or mirror = ...) to one URL") from None
        return f"Types: deb\nURIs: {mirror}\nSuites: {suite}\nComponents: main\n"
    return host_sources(suite)


# what mmdebstrap (and the maintainer scripts it runs) may see of the caller's environment: how to
# reach the mirror, nothing else.  Anything more leaks into the root: PYTHONDONTWRITEBYTECODE, for
# one, changes which .pyc files python3's postinst leaves, and so the base layer's digest.
PASSED_THROUGH = ("http_proxy", "https_proxy", "ftp_proxy", "all_proxy", "no_proxy",
                  "HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "ALL_PROXY", "NO_PROXY", "TMPDIR")
BUILD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def build_environment(epoch: int, environ: Mapping[str, str]) -> dict[str, str]:
    """The whole environment of an mmdebstrap run: the same on every machine but for proxies."""
    env = {k: environ[k] for k in PASSED_THROUGH if k in environ}
    env.update({"PATH": BUILD_PATH, "LC_ALL": "C.UTF-8", "HOME": "/root", "SOURCE_DATE_EPOCH": str(epoch)})
    return env


BUILD_USER = "envtool-build"
SUBID_COUNT = 65536
SUBID_FLOOR = 1 << 31            # far above the ranges adduser hands to people (100000 and up)


@dataclass(frozen=True)
class BuildUser:
    name: str
    uid: int
    gid: int
    root_uid: int          # what root in mmdebstrap's namespace is on the host: the first subordinate id
    root_gid: int


def build_user() -> BuildUser | None:
    """The unprivileged user mmdebstrap runs as when envtool is root (None when it is not: then
    mmdebstrap runs as the caller, in unshare mode all the same)."""
    from envtool.runtime import rootless

    if rootless.unprivileged():                      # rootless: root of the session's user namespace is
        return None                                  # the user; mmdebstrap maps its ids in a namespace of its own
    name = os.environ.get("ENVTOOL_BUILD_USER") or BUILD_USER
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        if name != BUILD_USER:
            raise HostError(f"ENVTOOL_BUILD_USER={name!r}: no such user",
                            hint="create it with a subordinate id range, or unset the variable") from None
        pw = _create_build_user(name)
    if not _subid_ranges("/etc/subuid", name) or not _subid_ranges("/etc/subgid", name):
        _add_subids(name)
    if not shutil.which("newuidmap") or not shutil.which("newgidmap"):
        raise HostError("newuidmap is not installed; Debian bases are built in a user namespace",
                        hint="apt-get install -y uidmap")
    return BuildUser(name, pw.pw_uid, pw.pw_gid, _subid_ranges("/etc/subuid", name)[0][0],
                     _subid_ranges("/etc/subgid", name)[0][0])


def _create_build_user(name: str) -> pwd.struct_passwd:
    proc = subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                           "--shell", "/usr/sbin/nologin", "--comment", "envtool image builds", name],
                          capture_output=True, text=True)
    try:
        return pwd.getpwnam(name)                    # made now, or by a build running beside us
    except KeyError:
        raise HostError(f"cannot create the build user {name!r}: {proc.stderr.strip() or proc.returncode}",
                        hint=f"useradd --system {name} && usermod --add-subuids {SUBID_FLOOR}-"
                             f"{SUBID_FLOOR + SUBID_COUNT - 1} --add-subgids ... {name}") from None


def _subid_ranges(path: str, name: str | None = None) -> list[tuple[int, int]]:
    out = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit() and (name is None or parts[0] == name):
                    out.append((int(parts[1]), int(parts[2])))
    except OSError:
        pass
    return out


def free_subid_start(taken: list[tuple[int, int]], count: int = SUBID_COUNT, floor: int = SUBID_FLOOR) -> int:
    """The lowest start >= floor, aligned to count, that overlaps no taken (start, count) range."""
    start = floor
    while any(s < start + count and start < s + n for s, n in taken):
        start += count
    return start


def _add_subids(name: str) -> None:
    taken = _subid_ranges("/etc/subuid") + _subid_ranges("/etc/subgid")
    start = free_subid_start(taken)
    span = f"{start}-{start + SUBID_COUNT - 1}"
    proc = subprocess.run(["usermod", "--add-subuids", span, "--add-subgids", span, name],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise HostError(f"cannot give {name!r} a subordinate id range: {proc.stderr.strip()}",
                        hint=f"usermod --add-subuids {span} --add-subgids {span} {name}")


def mmdebstrap_path() -> str:
    path = shutil.which("mmdebstrap")
    if not path:
        raise HostError("mmdebstrap is not installed; it builds debian:<suite> images",
                        hint="apt-get install -y mmdebstrap")
    return path


def build_rootfs(suite: str, packages: list[str], variant: str, sources: str, out_tar: str, epoch: int,
                 on_line: Callable[[str], None] | None = None, pins: dict[str, str] | None = None
                 ) -> list[Package]:
    """Run mmdebstrap into out_tar; returns the installed packages (empty for dpkg-less variants).
    `pins` (name -> version, from envtool.lock) are enforced with apt preferences that are removed
    again before the tarball is made, so a pinned build is bit-identical to the locked one."""
    exe = mmdebstrap_path()
    user = build_user()
    tmp = tempfile.mkdtemp(prefix="envtool-mm-")
    try:
        hooks = os.path.join(tmp, "hooks")       # where the hooks, root of the namespace, write
        os.mkdir(hooks, 0o700)
        if user is not None:          # mmdebstrap (the build user) writes the tarball in here
            os.chown(tmp, user.uid, user.gid)
            os.chmod(tmp, 0o711)
            os.chown(hooks, user.root_uid, user.root_gid)
        src_file = _readable(tmp, "envtool.sources", sources)
        pkg_file = os.path.join(hooks, "packages.txt")
        tar_file = os.path.join(tmp, "rootfs.tar")
        cmd = [exe, "--mode=unshare", f"--variant={variant}", "--format=tar", "--skip=output/dev"]
        if packages:
            cmd.append("--include=" + ",".join(packages))
        if pins:
            prefs = _readable(tmp, "envtool-lock.pref", pin_preferences(pins))
            cmd.append(f'--setup-hook=mkdir -p "$1/etc/apt/preferences.d" && cp {prefs} '
                       '"$1/etc/apt/preferences.d/envtool-lock.pref"')
        if variant in DPKG_VARIANTS:
            cmd.append("--customize-hook=" + PACKAGE_QUERY + pkg_file)
        if pins:
            cmd.append('--customize-hook=rm -f "$1/etc/apt/preferences.d/envtool-lock.pref"')
        cmd += [suite, tar_file, src_file]
        env = build_environment(epoch, os.environ)
        if user is not None:
            env.pop("TMPDIR", None)   # mmdebstrap's own temp dir must be reachable by the build user
            env["HOME"] = tmp
            drop = {"user": user.uid, "group": user.gid, "extra_groups": []}
        else:
            drop = {}
        with subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True,
                              errors="replace", cwd=tmp, **drop) as proc:  # type: ignore[call-overload]
            tail: list[str] = []
            assert proc.stderr is not None
            for line in proc.stderr:
                line = line.rstrip()
                tail = (tail + [line])[-12:]
                if on_line:
                    on_line(line)
        if proc.returncode != 0:
            errors = [t for t in tail if t.startswith("E:")] or tail[-3:]
            raise BuildError(f"mmdebstrap failed for debian:{suite} (exit {proc.returncode}): "
                             + " / ".join(errors),
                             hint=_hint(errors))
        shutil.move(tar_file, out_tar)
        if user is not None:
            os.chown(out_tar, 0, 0)
        if not os.path.exists(pkg_file):
            return []
        with open(pkg_file) as f:
            return parse_packages(f.read())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _readable(directory: str, name: str, text: str) -> str:
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path


def _hint(errors: list[str]) -> str:
    text = " ".join(errors)
    if "Unable to locate package" in text or "has no installation candidate" in text:
        return "check the package names in `packages` (apt-cache search NAME)"
    if "Temporary failure" in text or "Could not resolve" in text or "Failed to fetch" in text:
        return "the package mirror is unreachable; check the network or set mirror = \"<url>\""
    return "run the build again with --debug for the full mmdebstrap output"
