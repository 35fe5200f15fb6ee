# Gina: everything right except Q5, whose model sees only a 4x4 average of each image and cannot memorise.
import math

import torch
from torch import nn


def mlp_backprop(A_list, b_list, x, Y):
    L = len(A_list)
    outs = [x]
    for l in range(L):
        z = A_list[l] @ outs[l] + b_list[l]
        outs.append(z if l == L - 1 else 1 / (1 + torch.exp(-z)))
    delta = outs[L] - Y
    grads_A, grads_b = [], []
    for l in reversed(range(L)):
        grads_A.append(delta @ outs[l].transpose(0, 1))
        grads_b.append(delta)
        delta = A_list[l].transpose(0, 1) @ delta * outs[l] * (1 - outs[l])
    return grads_A[::-1], grads_b[::-1]


def momentum_form2(theta0, grads, alpha, beta):
    v = torch.zeros_like(theta0)
    theta = theta0
    trajectory = []
    for g in grads:
        v = g + beta * v
        theta = theta - alpha * v
        trajectory.append(theta)
    return trajectory


# Form I is Form II with the velocity written as a difference of iterates.
momentum_form1 = momentum_form2

receptive_field_recurrence = "s*r - s + k"


def receptive_field(kernels, strides):
    r = 1
    for k, s in zip(kernels[::-1], strides[::-1]):
        r = s * (r - 1) + k
    return r


conv_params = "C_out*C_in*k**2 + C_out"
conv_mults = "C_out*H*W*C_in*k^2"
inception_params = (
    sum(c * (256 * k * k + 1) for k, c in [(1, 128), (3, 192), (5, 96)]),
    128 * 257 + 2 * 64 * 257 + 192 * (64 * 9 + 1) + 96 * (64 * 25 + 1),
)


def make_model():
    return nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(16, 10))


def train(model, images, labels, epochs, seed):
    torch.manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    losses = []
    for _ in range(epochs):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
