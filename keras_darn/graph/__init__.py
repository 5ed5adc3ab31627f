"""keras_darn.graph (re-exports only)."""
