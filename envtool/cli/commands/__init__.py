"""One module per command group: parse options, call envtool.api, render."""
