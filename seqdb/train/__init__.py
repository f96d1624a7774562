"""Training: the trainer library (train, evaluate), dynamic batching, checkpoints, DDP."""
