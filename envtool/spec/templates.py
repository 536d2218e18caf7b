"""The starter envtool.toml written by `envtool init`."""

STARTER = '''\
# envtool.toml: the stack of this project.  Reference: docs/reference/envtool-toml.md
[project]
name = "{name}"

[images.app]
from = "debian:bookworm"
packages = ["python3"]
cmd = ["python3", "-m", "http.server", "8000"]

[services.web]
image = "app"
ports = ["8000:8000"]
restart = "on-failure"
healthcheck = {{ command = ["python3", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000')"], interval = "2s", retries = 15 }}
'''
