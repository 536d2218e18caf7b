"""Images: the content-addressed OCI store, deterministic layers, safe extraction, recipes, builds."""
