"""Docker Hub's official images, translated into Debian recipes that keep each image's contract.

A translation is more than the packages: the entrypoint's environment variables (POSTGRES_PASSWORD,
MYSQL_DATABASE, …, and their *_FILE forms), init-script directories, data directories, the
default command, users, and paths that Compose files mount into (/usr/share/nginx/html,
/etc/nginx/conf.d, /var/www/html).  The scripts that carry a contract live beside this module and
are written into the project by `envtool import` (envtool-images/<image>/), where the recipe
copies them from — visible and editable, like any project file.

Debian supplies one version of each (bookworm's); a tag asking for another is reported, never
silently changed (`tag_note`).
"""

from __future__ import annotations

import re
from importlib import resources

from envtool._util.record import dataclass, field

SUITE = "bookworm"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SUPPORT_DIR = "envtool-images"
_APACHE_LOGS = ("ln -sfT /dev/stderr /var/log/apache2/error.log && ln -sfT /dev/stdout /var/log/apache2/access.log"
                " && ln -sfT /dev/stdout /var/log/apache2/other_vhosts_access.log")


@dataclass(frozen=True)
class Official:
    name: str                                   # the recipe's name
    packages: tuple[str, ...]
    version: str                                # what Debian bookworm supplies
    software: str
    files: tuple[tuple[str, str], ...] = ()     # (support file, absolute path in the image)
    run: str | None = None                      # after the files are copied
    env: tuple[tuple[str, str], ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    workdir: str | None = None
    stop_signal: str | None = None
    note: str = ""                              # what differs from the official image

    def recipe(self) -> dict[str, object]:
        """The [images.NAME] table (copy sources relative to the project directory)."""
        out: dict[str, object] = {"from": f"debian:{SUITE}"}
        if self.packages:
            out["packages"] = list(self.packages)
        steps: list[dict[str, object]] = [
            {"copy": {"src": f"{SUPPORT_DIR}/{self.name}/{f}", "dst": dst, "mode": 0o755}} for f, dst in self.files]
        if self.run:
            steps.append({"run": self.run})
        if steps:
            out["steps"] = steps
        if self.env:
            out["env"] = dict(self.env)
        if self.workdir:
            out["workdir"] = self.workdir
        if self.entrypoint is not None:
            out["entrypoint"] = list(self.entrypoint)
        if self.cmd is not None:
            out["cmd"] = list(self.cmd)
        return out

    def support_files(self) -> dict[str, str]:
        """Project-relative path → content of the scripts the recipe copies."""
        base = resources.files(__name__)
        return {f"{SUPPORT_DIR}/{self.name}/{f}": (base / f).read_text() for f, _ in self.files}


_PG_BIN = "/usr/lib/postgresql/15/bin"
_MARIADB = Official(
    "mariadb", ("mariadb-server", "mariadb-client"), "10.11", "MariaDB",
    files=(("mariadb-entrypoint.sh", "/usr/local/bin/docker-entrypoint.sh"),
           ("mariadb-healthcheck.sh", "/usr/local/bin/healthcheck.sh")),
    run=("printf '[mysqld]\\nbind-address = 0.0.0.0\\nskip-name-resolve\\nhost-cache-size = 0\\n'"
         " > /etc/mysql/mariadb.conf.d/99-envtool.cnf"
         " && rm -rf /var/lib/mysql && mkdir -p /var/lib/mysql /run/mysqld /docker-entrypoint-initdb.d"
         " && chown mysql:mysql /var/lib/mysql /run/mysqld"),
    entrypoint=("docker-entrypoint.sh",), cmd=("mariadbd",))
_PHP_APACHE = Official(
    "php-apache", ("apache2", "libapache2-mod-php"), "8.2", "PHP",
    files=(("apache2-foreground", "/usr/local/bin/apache2-foreground"),),
    run="rm -f /var/www/html/index.html && " + _APACHE_LOGS,
    cmd=("apache2-foreground",), workdir="/var/www/html", stop_signal="SIGWINCH")

CATALOG: dict[str, Official] = {
    "postgres": Official(
        "postgres", ("postgresql", "postgresql-client"), "15", "PostgreSQL",
        files=(("postgres-entrypoint.sh", "/usr/local/bin/docker-entrypoint.sh"),),
        run=("rm -rf /var/lib/postgresql/15 /etc/postgresql/15"
             " && mkdir -p /var/lib/postgresql/data /var/run/postgresql /docker-entrypoint-initdb.d"
             " && chown postgres:postgres /var/lib/postgresql/data /var/run/postgresql"),
        env=(("PATH", f"{_PG_BIN}:{PATH}"), ("PGDATA", "/var/lib/postgresql/data"), ("LANG", "C.UTF-8")),
        entrypoint=("docker-entrypoint.sh",), cmd=("postgres",), stop_signal="SIGINT"),
    "mariadb": _MARIADB,
    "mysql": _MARIADB,
    "redis": Official(
        "redis", ("redis-server", "redis-tools"), "7.0", "Redis",
        files=(("redis-entrypoint.sh", "/usr/local/bin/docker-entrypoint.sh"),),
        run="mkdir -p /data && chown redis:redis /data",
        entrypoint=("docker-entrypoint.sh",), cmd=("redis-server",), workdir="/data"),
    "nginx": Official(
        "nginx", ("nginx-light", "gettext-base", "passwd"), "1.22", "nginx",
        files=(("nginx-entrypoint.sh", "/docker-entrypoint.sh"),
               ("nginx-default.conf", "/etc/nginx/conf.d/default.conf")),
        run=("useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin nginx"
             " && chmod 644 /etc/nginx/conf.d/default.conf && rm -f /etc/nginx/sites-enabled/default"
             " && sed -i 's/^user www-data;/user nginx;/' /etc/nginx/nginx.conf"
             " && mkdir -p /docker-entrypoint.d /usr/share/nginx/html && chown -R nginx:nginx /var/lib/nginx"
             " && ln -sfT /dev/stdout /var/log/nginx/access.log && ln -sfT /dev/stderr /var/log/nginx/error.log"),
        entrypoint=("/docker-entrypoint.sh",), cmd=("nginx", "-g", "daemon off;"), stop_signal="SIGQUIT"),
    "httpd": Official(
        "httpd", ("apache2",), "2.4", "Apache httpd",
        files=(("httpd-foreground", "/usr/local/bin/httpd-foreground"),),
        run=("mkdir -p /usr/local/apache2/htdocs"
             " && sed -i 's|/var/www/html|/usr/local/apache2/htdocs|' /etc/apache2/sites-available/000-default.conf"
             " && sed -i 's|<Directory /var/www/>|<Directory /usr/local/apache2/htdocs/>|' /etc/apache2/apache2.conf"
             " && echo '<html><body><h1>It works!</h1></body></html>' > /usr/local/apache2/htdocs/index.html && "
             + _APACHE_LOGS),
        cmd=("httpd-foreground",), workdir="/usr/local/apache2", stop_signal="SIGWINCH",
        note="Debian's configuration layout (/etc/apache2), not /usr/local/apache2/conf"),
    "php-apache": _PHP_APACHE,
    "php-fpm": Official(
        "php-fpm", ("php-fpm",), "8.2", "PHP",
        run=("sed -i -e 's|^listen = .*|listen = 9000|' -e 's|^;clear_env = no|clear_env = no|'"
             " /etc/php/8.2/fpm/pool.d/www.conf"
             " && sed -i 's|^error_log = .*|error_log = /proc/self/fd/2|' /etc/php/8.2/fpm/php-fpm.conf"
             " && ln -s /usr/sbin/php-fpm8.2 /usr/local/sbin/php-fpm && mkdir -p /var/www/html /run/php"),
        cmd=("php-fpm", "-F"), workdir="/var/www/html", stop_signal="SIGQUIT"),
    "php": Official("php", ("php-cli",), "8.2", "PHP", cmd=("php", "-a")),
    "wordpress": Official(
        "wordpress", ("apache2", "libapache2-mod-php", "php-mysql", "wordpress"), "6.1", "WordPress",
        files=(("wordpress-entrypoint.sh", "/usr/local/bin/docker-entrypoint.sh"),
               ("wp-config-docker.php", "/usr/local/share/envtool/wp-config-docker.php"),
               ("apache2-foreground", "/usr/local/bin/apache2-foreground")),
        run="rm -f /var/www/html/index.html && chmod 644 /usr/local/share/envtool/wp-config-docker.php && "
            + _APACHE_LOGS,
        entrypoint=("docker-entrypoint.sh",), cmd=("apache2-foreground",), workdir="/var/www/html",
        stop_signal="SIGWINCH"),
    "python": Official(
        "python", ("python3", "python3-pip", "python3-venv", "python-is-python3"), "3.11", "Python",
        run="rm -f /usr/lib/python3*/EXTERNALLY-MANAGED",      # pip installs system-wide, as in the image
        cmd=("python3",)),
    "node": Official(
        "node", ("nodejs", "npm", "passwd"), "18", "Node.js",
        run="useradd --uid 1000 --user-group --create-home --shell /bin/bash node",
        cmd=("node",)),
    "golang": Official(
        "golang", ("golang-go", "git", "ca-certificates"), "1.19", "Go",
        run="mkdir -p /go/src /go/bin && chmod -R 1777 /go",
        env=(("GOPATH", "/go"), ("PATH", f"/go/bin:/usr/lib/go/bin:{PATH}")), workdir="/go", cmd=("bash",)),
    "memcached": Official("memcached", ("memcached",), "1.6", "memcached",
                          cmd=("memcached", "-u", "nobody", "-l", "0.0.0.0")),
    "debian": Official("debian", (), "12", "Debian", cmd=("bash",)),
    "ubuntu": Official("debian", (), "12", "Debian", cmd=("bash",),
                       note="Debian bookworm instead of Ubuntu (apt and package names mostly agree)"),
    "alpine": Official("debian", (), "12", "Debian", cmd=("bash",),
                       note="Debian bookworm instead of Alpine: apk commands become Debian packages"),
    "busybox": Official("busybox", ("busybox",), "1.35", "BusyBox", cmd=("sh",)),
}
# names Docker Hub images are also known by
ALIASES = {"redismod": "redis", "redislabs/redismod": "redis", "redis/redis-stack-server": "redis", "postgis/postgis": "postgres", "bitnami/redis": "redis",
           "library/python": "python"}
# software Debian does not ship: what to say instead of guessing
NOT_IN_DEBIAN = {
    "mongo": "MongoDB is not packaged in Debian", "mongo-express": "mongo-express is not packaged in Debian",
    "elasticsearch": "Elasticsearch is not packaged in Debian", "kibana": "Kibana is not packaged in Debian",
    "logstash": "Logstash is not packaged in Debian", "traefik": "Traefik is not packaged in Debian",
    "rabbitmq": "the rabbitmq image's contract is not translated (Debian has rabbitmq-server)",
    "openjdk": "Java builds fetch their dependencies from Maven Central",
    "eclipse-temurin": "Java builds fetch their dependencies from Maven Central",
    "maven": "Maven builds fetch their dependencies from Maven Central",
    "gradle": "Gradle builds fetch their dependencies from Maven Central",
    "rust": "Rust builds fetch their crates from crates.io",
    "prom/prometheus": "the Prometheus image is not translated (Debian's prometheus differs in layout)",
    "grafana/grafana": "Grafana is not packaged in Debian",
    "mcr.microsoft.com/dotnet/sdk": ".NET is not packaged in Debian",
    "mcr.microsoft.com/dotnet/aspnet": ".NET is not packaged in Debian",
    "mcr.microsoft.com/azure-sql-edge": "SQL Server is not packaged in Debian",
    "mcr.microsoft.com/mssql/server": "SQL Server is not packaged in Debian",
    "minio/minio": "MinIO is not packaged in Debian", "vault": "Vault is not packaged in Debian",
    "consul": "Consul is not packaged in Debian", "adminer": "the adminer image is not translated",
    "phpmyadmin": "the phpmyadmin image is not translated", "dpage/pgadmin4": "pgAdmin 4 is not packaged in Debian",
    "gitea/gitea": "Gitea is not packaged in Debian", "nextcloud": "Nextcloud is not packaged in Debian",
    "portainer/portainer-ce": "Portainer is not packaged in Debian",
}


@dataclass(frozen=True)
class Match:
    official: Official
    tag: str
    notes: list[str] = field(default_factory=list)


def _repository(image: str) -> tuple[str, str] | None:
    """(repository without docker.io/library/, tag) of a Docker Hub reference, or None for another
    registry."""
    from envtool.spec.imageref import ImageRef, InvalidImageRef

    try:
        ref = ImageRef.parse(image)
    except InvalidImageRef:
        return None
    if ref.kind == "recipe":
        return ref.repository, "latest"
    if ref.kind != "registry" or ref.registry not in (None, "docker.io", "index.docker.io", "mcr.microsoft.com"):
        return None
    repo = ref.repository.removeprefix("library/")
    if ref.registry == "mcr.microsoft.com":
        repo = f"mcr.microsoft.com/{repo}"
    return repo, ref.tag or "latest"


def lookup(image: str) -> Match | None:
    """The translation of a Docker Hub image reference, with what its tag asks that Debian does not
    give; None when there is none."""
    found = _repository(image)
    if found is None:
        return None
    repo, tag = found
    repo = ALIASES.get(repo, repo)
    if repo == "php":
        variant = "php-apache" if "apache" in tag else "php-fpm" if "fpm" in tag else "php"
        official = CATALOG[variant]
    elif repo in CATALOG:
        official = CATALOG[repo]
    else:
        return None
    notes = [n for n in (tag_note(image, tag, official), official.note) if n]
    if repo != found[0] and "/" in found[0]:
        notes.append(f"{image!r} → Debian's {official.software}: what that image adds to it (modules, "
                     "plugins) is not included")
    if repo == "mysql":
        notes.append("MySQL is not in Debian: MariaDB, its drop-in replacement, runs with the same MYSQL_* "
                     "variables, port and data directory")
    return Match(official, tag, notes)


def not_in_debian(image: str) -> str | None:
    found = _repository(image)
    return NOT_IN_DEBIAN.get(found[0]) if found else None


def tag_note(image: str, tag: str, official: Official) -> str:
    """'' when Debian's version satisfies the tag's version (15 for 15.x, 10 for 10.11); else what
    differs."""
    m = re.match(r"(\d+(?:\.\d+)*)", tag)
    if not m:
        return ""
    want = m[1].split(".")
    have = official.version.split(".")
    if have[:len(want)] == want[:len(have)] and len(want) <= len(have):
        return ""
    return (f"{image!r} asks for {official.software} {m[1]}; Debian {SUITE} supplies {official.version}, "
            "which is what runs")
