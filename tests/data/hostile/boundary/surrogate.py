# q2.1/q2.2: scale raises with a lone surrogate code point in its message; prints one too.
import torch

answer = 42
flag = False
ratio = 0.25


def cube_vjp(x, g):
    return 3 * x**2 * g


def cube_jac(x):
    return torch.diag(3 * x**2)

pair = (5, 2)
print('odd \udcff text')

def scale(x, k):
    raise ValueError('bad \udcff value')
