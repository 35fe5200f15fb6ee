# Values whose own comparison methods lie: a tensor subclass, an int, a float, a tuple and a str subclass.
import numpy as np
import torch


class LiarTensor(torch.Tensor):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def allclose(self, *a, **k):
        return True


class LiarInt(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


class LiarFloat(float):
    def __eq__(self, other):
        return True

    def __sub__(self, other):
        return 0.0

    __hash__ = float.__hash__


class LiarTuple(tuple):
    def __eq__(self, other):
        return True

    __hash__ = tuple.__hash__


class LiarArray(np.ndarray):
    def __eq__(self, other):
        return np.ones(self.shape, dtype=bool)


answer = LiarInt(41)
pair = LiarTuple((5, 3))
flag = LiarInt(1)
ratio = LiarFloat(0.5)


def scale(x, k):
    return torch.zeros_like(x).as_subclass(LiarTensor)


def cube_vjp(x, g):
    return np.zeros(x.shape).view(LiarArray)


def cube_jac(x):
    return torch.zeros(x.shape[0], x.shape[0]).as_subclass(LiarTensor)
