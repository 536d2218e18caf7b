"""envtool.lock: the model, reading and writing it, and drift between a project and its lock."""

VERSION = 1                             # of the envtool.lock format
