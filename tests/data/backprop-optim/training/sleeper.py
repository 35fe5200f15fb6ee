# A trainer that sleeps far past any budget.
import time
import torch


def make_model():
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))


def train(model, images, labels, epochs, seed):
    time.sleep(60)
    return [0.0] * epochs


after_training = 42
