# Frank: right numbers, but the momentum functions write into their inputs, and q1.1 leans on autograd.
import torch


def mlp_backprop(A_list, b_list, x, Y):
    As = [A.clone().requires_grad_() for A in A_list]
    bs = [b.clone().requires_grad_() for b in b_list]
    y = x
    for i, (A, b) in enumerate(zip(As, bs)):
        y = A @ y + b
        if i < len(As) - 1:
            y = torch.sigmoid(y)
    loss = 0.5 * ((y - Y) ** 2).sum()
    grads = torch.autograd.grad(loss, As + bs)
    return list(grads[: len(As)]), list(grads[len(As):])


def momentum_form1(theta0, grads, alpha, beta):
    theta, prev, out = theta0, theta0.clone(), []
    for g in grads:
        step = -alpha * g + beta * (theta - prev)
        prev = theta.clone()
        theta += step  # in place: theta is theta0
        out.append(theta.clone())
    return out


def momentum_form2(theta0, grads, alpha, beta):
    v, theta, out = torch.zeros_like(theta0), theta0.clone(), []
    for g in grads:
        g += beta * v  # in place: g is grads[k]
        v = g
        theta = theta - alpha * v
        out.append(theta)
    return out


receptive_field_recurrence = "k + s*r - s"


def receptive_field(kernels, strides):
    r = 1
    for k, s in reversed(list(zip(kernels, strides))):
        r = k + s * r - s
    return r


conv_params = "(k*k*C_in + 1)*C_out"
conv_mults = "k**2*C_in*H*W*C_out"
inception_params = (1089952, 330272)


def make_model():
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))


def train(model, images, labels, epochs, seed):
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    out = []
    for _ in range(epochs):
        total = 0.0
        for chunk in torch.randperm(len(labels), device=labels.device).split(64):
            loss = torch.nn.functional.cross_entropy(model(images[chunk]), labels[chunk])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(chunk)
        out.append(total / len(labels))
    return out
