"""The schema, engines, sessions and migrations."""
