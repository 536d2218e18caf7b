"""Official images translated by `envtool import`, used the way their Docker Hub pages document
them (environment variables, *_FILE secrets, init scripts, data volumes, mounted config), each in
a Compose file written here from that documented shape, imported, locked, brought up and reached
through its published port.  Every stack runs in a network namespace of its own (a second
"host"), so nothing it publishes meets anything else on this machine."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.integration.release.hosts import Host

pytestmark = [pytest.mark.root, pytest.mark.slow]


class Stack:
    def __init__(self, d: Path, store_root: str) -> None:
        self.d, self.name = d, f"o{uuid.uuid4().hex[:8]}"
        self.host = Host(f"et-off-{uuid.uuid4().hex[:6]}", Path(store_root))
        self.env = {**os.environ, "ENVTOOL_ROOT": store_root}

    def up(self) -> None:
        imported = self.host.run("import", str(self.d / "compose.yaml"), "--name", self.name)
        assert imported.returncode == 0, imported.stderr
        # built on this host (the package mirror is reached from here; the "host" has loopback only);
        # the first build writes envtool.lock
        built = subprocess.run([sys.executable, "-m", "envtool", "-C", str(self.d), "build", "--progress", "plain"],
                               env=self.env, capture_output=True, text=True, timeout=1200)
        assert built.returncode == 0, built.stderr[-3000:]
        up = self.host.run("-C", str(self.d), "up", "-d", "--locked", timeout=300)
        assert up.returncode == 0, up.stderr[-3000:]

    def envtool(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.host.run("-C", str(self.d), *args, timeout=120)

    def wait_healthy(self, service: str, seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ps = self.envtool("ps", "--json")
            if ps.returncode == 0 and f'"{service}"' in ps.stdout and '"healthy"' in ps.stdout.split(
                    f'"service": "{service}"', 1)[-1].split("}", 1)[0]:
                return
            time.sleep(0.5)
        raise AssertionError(f"{service} did not get healthy:\n{self.envtool('logs', service).stdout[-3000:]}")

    def get(self, port: int, path: str = "/", seconds: float = 60) -> str:
        deadline, last = time.monotonic() + seconds, ""
        code = (f"import urllib.request as u, urllib.error as e\n"
                f"try: print(u.urlopen('http://127.0.0.1:{port}{path}', timeout=5).read().decode())\n"
                f"except e.HTTPError as x: print(x.code, x.read().decode())")
        while time.monotonic() < deadline:
            proc = subprocess.run(["nsenter", f"--net=/run/netns/{self.host.name}", sys.executable, "-c", code],
                                  capture_output=True, text=True, timeout=20)
            if proc.returncode == 0:
                return proc.stdout
            last = proc.stderr
            time.sleep(0.5)
        raise AssertionError(f"nothing on port {port}{path}: {last[-500:]}\n{self.envtool('logs').stdout[-4000:]}")

    def close(self) -> None:
        self.host.close(self.name)


@pytest.fixture
def stack(tmp_path, store_root, leak_check):
    made: list[Stack] = []

    def make(files: dict[str, str]) -> Stack:
        for rel, text in files.items():
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_text(text)
        s = Stack(tmp_path, store_root)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def test_postgres_with_secret_init_scripts_and_a_data_volume(stack):
    s = stack({"compose.yaml": """
services:
  db:
    image: postgres:15
    environment:
      POSTGRES_USER: shop
      POSTGRES_PASSWORD_FILE: /run/secrets/db_password
      POSTGRES_DB: orders
    secrets: [db_password]
    volumes:
      - ./init:/docker-entrypoint-initdb.d:ro
      - pgdata:/var/lib/postgresql/data
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U shop -d orders"]
      interval: 1s
      retries: 60
  client:
    image: postgres:15
    entrypoint: ["sleep", "3600"]
volumes:
  pgdata:
secrets:
  db_password:
    file: ./db_password.txt
""", "db_password.txt": "s3cret", "init/01-schema.sql": "CREATE TABLE items (name text);\n"
       "INSERT INTO items VALUES ('from-init-sql');\n",
        "init/02-more.sh": 'psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" '
                           "-c \"INSERT INTO items VALUES ('from-init-sh')\"\n"})
    s.up()
    s.wait_healthy("db")
    query = ["exec", "client", "sh", "-c", "PGPASSWORD=s3cret psql -h db -U shop -d orders -tAc "
             "'select name from items order by 1'"]

    def first_query() -> subprocess.CompletedProcess[str]:
        # The image's entrypoint runs the init scripts against a temporary server that listens on
        # the unix socket only, and `pg_isready` without -h (the healthcheck as its users write it,
        # with Compose too) already passes then: a TCP client may meet "Connection refused" for a
        # moment after "healthy".  Retry that one answer, bounded, as a client would.
        deadline = time.monotonic() + 30
        while True:
            got = s.envtool(*query)
            if got.returncode == 0 or "Connection refused" not in got.stderr or time.monotonic() > deadline:
                return got
            time.sleep(0.5)

    got = first_query()
    assert got.returncode == 0, got.stderr
    assert got.stdout.split() == ["from-init-sh", "from-init-sql"]
    wrong = s.envtool("exec", "client", "sh", "-c", "PGPASSWORD=nope psql -h db -U shop -d orders -c 'select 1'")
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr + wrong.stdout
    secret = s.envtool("exec", "db", "sh", "-c", "stat -c '%a %U' /run/secrets/db_password; "
                                                 "echo x > /run/secrets/db_password")
    assert secret.stdout.startswith("444 root") and "Read-only file system" in secret.stderr
    # the data outlives the container; the init scripts do not run twice
    assert s.envtool("restart", "db").returncode == 0
    s.wait_healthy("db")
    assert first_query().stdout.split() == ["from-init-sh", "from-init-sql"]


def test_lamp_php_apache_with_mysqli_and_mysql(stack):
    """php:8.2-apache built from a Dockerfile (docker-php-ext-install mysqli), MySQL's documented
    variables (served by MariaDB), an init script, a healthcheck with healthcheck.sh."""
    s = stack({"compose.yaml": """
services:
  web:
    build: ./php
    ports: ["8080:80"]
    depends_on:
      db: {condition: service_healthy}
  db:
    image: mysql:8.0
    command: --default-authentication-plugin=mysql_native_password
    environment:
      MYSQL_ROOT_PASSWORD: rootpw
      MYSQL_DATABASE: lamp
      MYSQL_USER: app
      MYSQL_PASSWORD_FILE: /run/secrets/app_pw
    secrets: [app_pw]
    volumes:
      - ./sql:/docker-entrypoint-initdb.d
      - dbdata:/var/lib/mysql
    healthcheck:
      test: ["CMD", "healthcheck.sh", "--connect", "--innodb_initialized"]
      interval: 1s
      retries: 90
volumes:
  dbdata: {}
secrets:
  app_pw:
    file: app_pw.txt
""", "app_pw.txt": "apppw\n", "sql/init.sql": "CREATE TABLE greeting (text VARCHAR(40));\n"
       "INSERT INTO greeting VALUES ('hello from mariadb');\n",
        "php/Dockerfile": "FROM php:8.2-apache\nRUN docker-php-ext-install mysqli pdo pdo_mysql\n"
                          "COPY src/ /var/www/html/\n",
        "php/src/index.php": "<?php\n$db = new mysqli('db', 'app', 'apppw', 'lamp');\n"
                             "echo $db->query('SELECT text FROM greeting')->fetch_row()[0], ' via PHP ', PHP_VERSION;\n"})
    s.up()
    s.wait_healthy("db", 120)
    body = s.get(8080)
    assert "hello from mariadb via PHP 8.2" in body, body
    root = s.envtool("exec", "db", "mariadb", "-uroot", "-prootpw", "-h", "127.0.0.1", "-e", "SELECT 1")
    assert root.returncode == 0, root.stderr


def test_wordpress_and_mysql_as_documented(stack):
    s = stack({"compose.yaml": """
services:
  wordpress:
    image: wordpress
    restart: always
    ports:
      - 8080:80
    environment:
      WORDPRESS_DB_HOST: db
      WORDPRESS_DB_USER: exampleuser
      WORDPRESS_DB_PASSWORD: examplepass
      WORDPRESS_DB_NAME: exampledb
    volumes:
      - wordpress:/var/www/html
  db:
    image: mysql:8.0
    restart: always
    environment:
      MYSQL_DATABASE: exampledb
      MYSQL_USER: exampleuser
      MYSQL_PASSWORD: examplepass
      MYSQL_RANDOM_ROOT_PASSWORD: '1'
    volumes:
      - db:/var/lib/mysql
volumes:
  wordpress:
  db:
"""})
    s.up()
    body = s.get(8080, "/wp-admin/install.php", seconds=120)
    for _ in range(90):          # the database initializes once; WordPress says so until it is up
        if "Error establishing a database connection" not in body and not body.startswith("500"):
            break
        time.sleep(1)
        body = s.get(8080, "/wp-admin/install.php")
    assert "five-minute WordPress installation" in body and "Error establishing" not in body, body[:1500]


def test_nginx_templates_redis_and_a_python_app(stack):
    """nginx's templates (envsubst), conf.d and html mounts, its `nginx` user; redis with flags as
    the command (protected mode off, as the image does); a python app FROM python:3.11-slim."""
    s = stack({"compose.yaml": """
services:
  proxy:
    image: nginx:1.22
    ports: ["8080:80"]
    environment:
      BACKEND: app:5000
    volumes:
      - ./templates:/etc/nginx/templates:ro
      - ./html:/usr/share/nginx/html:ro
    depends_on: [app]
  app:
    build: ./app
    depends_on: [cache]
  cache:
    image: redis:7
    command: redis-server --appendonly yes
""", "templates/default.conf.template": "server {\n  listen 80;\n  location /static/ { root /usr/share/nginx/html; }\n"
                                         "  location / { proxy_pass http://${BACKEND}; }\n}\n",
        "html/static/hello.txt": "static file\n",
        "app/Dockerfile": "FROM python:3.11-slim\nWORKDIR /app\nCOPY requirements.txt .\n"
                          "RUN pip install --no-cache-dir -r requirements.txt\nCOPY . .\n"
                          "CMD [\"python\", \"app.py\"]\n",
        "app/requirements.txt": "redis\n",
        "app/app.py": "import http.server, redis\nr = redis.Redis(host='cache')\n"
                      "class H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n"
                      "        n = r.incr('hits')\n        self.send_response(200); self.end_headers()\n"
                      "        self.wfile.write(f'hits={n}'.encode())\n"
                      "http.server.HTTPServer(('', 5000), H).serve_forever()\n"})
    s.up()
    assert s.get(8080, "/static/hello.txt").strip() == "static file"
    first = s.get(8080).strip()
    for _ in range(60):              # depends_on without a condition: the app may not listen yet (502)
        if first.startswith("hits="):
            break
        time.sleep(0.5)
        first = s.get(8080).strip()
    n = int(first.removeprefix("hits="))
    assert s.get(8080).strip() == f"hits={n + 1}"
    workers = s.envtool("exec", "proxy", "sh", "-c", "for p in /proc/[0-9]*; do grep -q nginx: $p/cmdline 2>/dev/null"
                        " && stat -c %U $p; done | sort | uniq -c")
    assert "nginx" in workers.stdout and "root" in workers.stdout, workers.stdout   # master root, workers nginx
    aof = s.envtool("exec", "cache", "sh", "-c", "ls /data; id -un")
    assert "appendonly" in aof.stdout or "appendonlydir" in aof.stdout, aof.stdout


@pytest.mark.long          # its three images cost CI 2.5 minutes to build cold; run with -m long
def test_nginx_with_php_fpm_httpd_and_memcached(stack):
    """nginx passing PHP to php:8.2-fpm (FastCGI on port 9000, the environment passed through, as
    the image does), httpd serving a mounted htdocs as its Docker Hub page shows, memcached."""
    s = stack({"compose.yaml": """
services:
  web:
    image: nginx:1.22
    ports: ["8080:80"]
    volumes:
      - ./site.conf:/etc/nginx/conf.d/default.conf:ro
      - ./code:/code:ro
    depends_on: [php]
  php:
    image: php:8.2-fpm
    environment:
      GREETING: hello-from-env
    volumes:
      - ./code:/code:ro
  static:
    image: httpd:2.4
    ports: ["8081:80"]
    volumes:
      - ./public-html/:/usr/local/apache2/htdocs/
  cache:
    image: memcached:1.6
""", "site.conf": "server {\n  listen 80;\n  root /code;\n  index index.php;\n  location ~ \\.php$ {\n"
                  "    fastcgi_pass php:9000;\n    include fastcgi_params;\n"
                  "    fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n  }\n}\n",
        "code/index.php": "<?php\n$m = fsockopen('cache', 11211);\nfwrite($m, \"version\\r\\n\");\n"
                          "echo getenv('GREETING'), ' PHP ', PHP_MAJOR_VERSION, '.', PHP_MINOR_VERSION, ' ', "
                          "trim(fgets($m));\n",
        "public-html/index.html": "<h1>static from httpd</h1>\n"})
    s.up()
    body = s.get(8080, "/index.php")
    for _ in range(60):
        if "hello-from-env" in body:
            break
        time.sleep(0.5)
        body = s.get(8080, "/index.php")
    assert body.startswith("hello-from-env PHP 8.2 VERSION 1.6"), body[:500]
    assert "static from httpd" in s.get(8081)
