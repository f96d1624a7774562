"""Typed configuration objects shared by the search, the runner, the model and the trainer."""
