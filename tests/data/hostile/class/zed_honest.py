# The honest classmate: every answer right.
import torch

answer = 42
pair = (5, 2)
flag = False
ratio = 0.25


def scale(x, k):
    return x * k


def cube_vjp(x, g):
    return 3 * x**2 * g


def cube_jac(x):
    return torch.diag(3 * x**2)
