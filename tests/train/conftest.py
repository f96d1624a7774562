"""One torch thread: the test machine's cores are shared, and tiny models run fastest so."""

import torch

torch.set_num_threads(1)
