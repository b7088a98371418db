"""LeNet-5 (LeCun et al., 1998), as the seed describes it: two blocks of
convolution -> sigmoid -> 2x2 average pooling, then three fully connected
layers. ``modern=True`` swaps in ReLU and max pooling."""
import numpy as np

from .. import nn
from ._memory import MemoryCheckedModel, named

__all__ = ["LeNet5", "lenet5"]


class LeNet5(MemoryCheckedModel):
    """``features`` (conv 5x5 -> 6, pool, conv 5x5 -> 16, pool) and
    ``classifier`` (400 -> 120 -> 84 -> num_classes) on 32 x 32 inputs; with
    ``input_size=28`` the first convolution pads by 2 (the usual MNIST form)."""

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
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=pad, dtype=dtype), act(), pool(),
            nn.Conv2d(6, 16, 5, dtype=dtype), act(), pool(),
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
    """LeNet-5 (61,706 parameters for 10 classes on 32 x 32 gray images)."""
    return named(LeNet5(num_classes, in_channels, input_size, modern, **kwargs), "lenet5")
