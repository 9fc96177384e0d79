"""Optuna studies and ready-made study / comparison definitions (``*.toml``)."""
