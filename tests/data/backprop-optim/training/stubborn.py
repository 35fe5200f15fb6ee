# A trainer that swallows the worker's alarm and sleeps on: only a kill from outside stops it.
import time
import torch


def make_model():
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))


def train(model, images, labels, epochs, seed):
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            time.sleep(end - time.monotonic())
        except BaseException:
            pass
    return [0.0] * epochs


after_training = 42
