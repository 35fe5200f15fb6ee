# q1.2: an integer of 6000 digits, past Python's string-conversion limit, which the student lifts.
import sys

sys.set_int_max_str_digits(0)
import torch

answer = 42
flag = False
ratio = 0.25


def cube_vjp(x, g):
    return 3 * x**2 * g


def cube_jac(x):
    return torch.diag(3 * x**2)

pair = (10**6000, 2)

def scale(x, k):
    return x * k
