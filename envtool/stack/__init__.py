"""The stack: graph, conversion to container configs, planning, execution, supervision."""
