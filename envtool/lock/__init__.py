"""envtool.lock: the model, reading and writing it, and drift between a project and its lock."""
