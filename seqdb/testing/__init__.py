"""Harnesses for tests and benchmarks: a model-free executor, a synthetic study, a JSONL
event log. Nothing in the product imports this package."""
