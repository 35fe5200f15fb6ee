# q1.2: an integer of 400 digits in a tuple (the grader once overflowed converting it).
import torch

answer = 42
flag = False
ratio = 0.25


def cube_vjp(x, g):
    return 3 * x**2 * g


def cube_jac(x):
    return torch.diag(3 * x**2)

pair = (10**400, 2)

def scale(x, k):
    return x * k
