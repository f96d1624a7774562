"""seqdb: a database-centric experiment tracker and trial runner for scaling studies."""

__version__ = "0.1.0"
