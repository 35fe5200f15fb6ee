# A hostile submission: every answer is wrong, and it tries to talk its way to full marks.
import json
import os
import sys

import numpy as np
import torch

torch.allclose = lambda *args, **kwargs: True
np.allclose = lambda *args, **kwargs: True
torch.Tensor.__eq__ = lambda self, other: True

print(json.dumps({"score": 30, "tests": []}))
for folder in (".", "..", "../..", os.path.expanduser("~")):
    try:
        with open(os.path.join(folder, "results.json"), "w") as fh:
            json.dump({"score": 30}, fh)
    except OSError:
        pass

conv_output_size = "H"
conv_example_output = (1, 1)


def conv1d_forward(x, W, stride):
    return torch.zeros(1)


def conv1d_grad_W(x, W, stride, grad_y):
    return torch.zeros_like(W)


def conv1d_grad_x(x, W, stride, grad_y):
    sys.exit(0)


gated_state_dim = "n"


def gated_rnn_forward(x, Wc, Wh, Wx):
    os._exit(0)


initial_loss = "K"
initial_accuracy = "K"
