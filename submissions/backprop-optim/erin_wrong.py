# Erin: Form II updates theta with the old velocity, and the receptive field ignores the strides.
import torch


def mlp_backprop(A_list, b_list, x, Y):
    ys = [x]
    for i, (A, b) in enumerate(zip(A_list, b_list)):
        z = A @ ys[-1] + b
        ys.append(z if i == len(A_list) - 1 else torch.sigmoid(z))
    g = ys[-1] - Y
    dAs, dbs = [], []
    for i in range(len(A_list) - 1, -1, -1):
        dAs.insert(0, g @ ys[i].T)
        dbs.insert(0, g)
        g = (A_list[i].T @ g) * ys[i] * (1 - ys[i])
    return dAs, dbs


def momentum_form1(theta0, grads, alpha, beta):
    thetas, prev, cur = [], theta0, theta0
    for g in grads:
        prev, cur = cur, cur - alpha * g + beta * (cur - prev)
        thetas.append(cur)
    return thetas


def momentum_form2(theta0, grads, alpha, beta):
    v, theta, thetas = torch.zeros_like(theta0), theta0, []
    for g in grads:
        theta = theta - alpha * v  # bug: the step uses v^k instead of v^{k+1}
        v = g + beta * v
        thetas.append(theta)
    return thetas


receptive_field_recurrence = "r*s + k - 1"  # wrong: equal to the right answer only when s = 1


def receptive_field(kernels, strides):
    return sum(kernels) - len(kernels) + 1  # wrong unless every stride is 1


conv_params = "k**2*C_in*C_out + C_out"
conv_mults = "H*W*k**2*C_in*C_out"
inception_params = (1089952, 330272)


def make_model():
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))


def train(model, images, labels, epochs, seed):
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    out = []
    for _ in range(epochs):
        perm = torch.randperm(len(labels), device=labels.device)
        losses = []
        for chunk in perm.split(64):
            loss = torch.nn.functional.cross_entropy(model(images[chunk]), labels[chunk])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        out.append(sum(losses) / len(losses))
    return out
