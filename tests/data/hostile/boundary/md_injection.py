# q2.1/q2.2: the exception message closes a code span and adds HTML lines (report.md injection).
import torch

answer = 42
flag = False
ratio = 0.25


def cube_vjp(x, g):
    return 3 * x**2 * g


def cube_jac(x):
    return torch.diag(3 * x**2)

pair = (5, 2)

def scale(x, k):
    raise ValueError('x`\n\n<img src=x onerror=alert(1)>\n\n<script>alert(2)</script>\n\n`')
