"""The command line: a thin skin over envtool.api."""
