"""keras_darn.callbacks (re-exports only)."""
