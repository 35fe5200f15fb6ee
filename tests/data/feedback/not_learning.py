import torch


def make_model():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 4))
    torch.nn.init.zeros_(model[1].weight)
    torch.nn.init.zeros_(model[1].bias)
    return model


def train(model, images, labels, epochs, seed):
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(epochs):
        optimizer.zero_grad()
        loss = loss_fn(model(images), labels)
        loss.backward()  # the gradients are computed, but the optimizer never steps
        losses.append(loss.item())
    return losses
