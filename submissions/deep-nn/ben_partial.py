# Ben's deep network, as a Python file.
import numpy as np

import dnn_utils
from dlai_tools.activations import relu, sigmoid


def linear_forward(A, W, b):
    Z = np.dot(W, A) + b
    return Z, (A, W, b)


def linear_activation_forward(A_prev, W, b, activation):
    Z, linear_cache = linear_forward(A_prev, W, b)
    if activation == "sigmoid":
        A, activation_cache = sigmoid(Z)
    else:
        A, activation_cache = relu(Z)
    return A, (linear_cache, activation_cache)


def compute_cost(AL, Y):
    # forgot to divide by the number of examples
    return -np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL))


def linear_backward(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = np.dot(dZ, A_prev.T) / m
    db = np.sum(dZ, axis=1) / m  # keepdims forgotten: shape (n,) instead of (n, 1)
    dA_prev = np.dot(W.T, dZ)
    return dA_prev, dW, db


def linear_activation_backward(dA, cache, activation):
    linear_cache, activation_cache = cache
    if activation == "relu":
        dZ = dnn_utils.relu_backward(dA, activation_cache)
    else:
        dZ = dnn_utils.sigmoid_backward(dA, activation_cache)
    return linear_backward(dZ, linear_cache)


def update_parameters(parameters, grads, learning_rate):
    new = {}
    for key, value in parameters.items():
        new[key] = value - learning_rate * grads["d" + key]
    return new


X_tiny = np.loadtxt("data/tiny.csv", delimiter=",")
X_mean = np.mean(X_tiny, axis=1, keepdims=True)
