# `train` is defined, `make_model` is not.
def train(model, images, labels, epochs, seed):
    return [1.0] * epochs


after_training = 42
