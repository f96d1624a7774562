"""Scaling-law fits as pure math (numpy/scipy, no database): L(N) here, L(N, D) in `nd`.

`fit_points(points, law=..., ...) -> FitResult` is the one entry point; the CLI
(`seqdb scaling fit POINTS.csv`), the database report (`seqdb.views.scaling`) and the
dashboard all go through it.
"""
