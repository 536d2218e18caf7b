"""Where base images come from: Debian packages (mmdebstrap), OCI archives, registries."""
