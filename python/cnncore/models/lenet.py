"""LeNet-5 (LeCun, Bottou, Bengio & Haffner, "Gradient-based learning applied to document
recognition", 1998), in the form the course teaches: two blocks of 5x5 convolution -> 2x2
average pooling -> sigmoid, then three fully connected layers. ``modern=True`` swaps in
ReLU and max pooling."""
import numpy as np

from .. import nn
from ._memory import MemoryCheckedModel, named

__all__ = ["LeNet5", "lenet5"]


class LeNet5(MemoryCheckedModel):
    """``features`` (conv 5x5 -> 6, pool, sigmoid, conv 5x5 -> 16, pool, sigmoid) and
    ``classifier`` (400 -> 120 -> 84 -> num_classes) on 32 x 32 inputs; with
    ``input_size=28`` the first convolution pads by 2 (the usual MNIST form).

    The paper's network: C1 (6 maps 5x5) -> S2 (2x2 subsampling: the sum of four inputs
    times a trainable coefficient plus a trainable bias, then a sigmoid) -> C3 (16 maps,
    each connected to a subset of S2's maps) -> S4 -> C5 (120) -> F6 (84, scaled tanh) ->
    output (10 Euclidean RBF units, trained with an MAP criterion). Here the subsampling is
    plain average pooling followed by the sigmoid (the order the paper uses), C3 sees all
    six maps, F6 uses the sigmoid and the output is a linear layer for cross-entropy:
    61,706 parameters for 10 classes (the paper's had 60,000 trainable parameters).
    """

    def __init__(self, num_classes=10, in_channels=1, input_size=32, modern=False,
                 dtype=np.float32):
        super().__init__()
        pad = 2 if input_size == 28 else 0
        side = ((input_size + 2 * pad - 4) // 2 - 4) // 2
        if side < 1:
            raise ValueError(f"lenet5: input_size must be at least 16 (32 or 28 in the paper), "
                             f"got {input_size}")
        act = nn.ReLU if modern else nn.Sigmoid
        pool = (lambda: nn.MaxPool2d(2)) if modern else (lambda: nn.AvgPool2d(2))
        self.input_size, self.in_channels, self.modern = input_size, in_channels, modern
        # conv -> pool -> activation, as the paper's C -> S layers (for ReLU and max pooling
        # the order does not matter: they commute)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=pad, dtype=dtype), pool(), act(),
            nn.Conv2d(6, 16, 5, dtype=dtype), pool(), act(),
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * side * side, 120, dtype=dtype), act(),
            nn.Linear(120, 84, dtype=dtype), act(),
            nn.Linear(84, num_classes, dtype=dtype),
        )

    def forward(self, x):
        s = self.input_size
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[2:] != (s, s):
            raise ValueError(f"LeNet5: expected input (N, {self.in_channels}, {s}, {s}), got "
                             f"{tuple(x.shape)}")
        return self.classifier(self.features(x).flatten(1))


def lenet5(num_classes=10, in_channels=1, input_size=32, modern=False, **kwargs):
    """LeNet-5 (LeCun et al., 1998) for ``num_classes`` classes on ``input_size`` square
    gray images (61,706 parameters for 10 classes on 32 x 32); see :class:`LeNet5` for what
    differs from the paper. ``modern=True``: ReLU and max pooling."""
    return named(LeNet5(num_classes, in_channels, input_size, modern, **kwargs), "lenet5")
