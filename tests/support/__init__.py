"""Helpers shared by keras_darn's tests."""
