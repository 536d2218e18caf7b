"""envtool.toml: models, loading phases, locations, checks, JSON schema."""
