"""Experiment definitions: the YAML schema, its loader, budget strings and the registry.

- `budgets`: `parse_budget("2M") -> 2_000_000`, `format_budget(2_000_000) -> "2M"`.
- `schema`: `ExperimentConfig`, the validated pydantic model of one experiment YAML.
- `loader`: `load_experiment(path)` with one-line `ConfigError`s naming file and field.
- `registry`: `register_experiment`, `get_experiment`, `list_experiments` (the database).
"""
