"""keras_darn.rebuild (re-exports only)."""
