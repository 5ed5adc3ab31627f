"""keras_darn.criteria (re-exports only)."""
