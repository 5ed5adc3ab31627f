"""keras_darn.algorithms (re-exports only)."""
