# The model's output has 5 classes, not 10.
import torch


def make_model():
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 5))


def train(model, images, labels, epochs, seed):
    return [1.0] * epochs


after_training = 42
