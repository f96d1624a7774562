"""Beyond one machine: Slurm job arrays (`slurm.py`) and DDP trials (`ddp.py`).

Every worker, wherever it runs, needs only the database URL: the queue lives in Postgres.
"""
