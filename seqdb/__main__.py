from seqdb.cli.main import entrypoint

entrypoint()
