"""The container engine: namespaces, mounts, cgroups, capabilities, seccomp.

Knows nothing of envtool.toml; it takes a frozen ContainerConfig (config.py).
"""
