"""ZFNet (Zeiler & Fergus, 2013): AlexNet with a 7x7 stride-2 first layer and a
stride-2 second layer, found by visualising AlexNet's filters. One tower, LRN
("contrast normalisation") after the first two pooling layers. Sizes for a
224 x 224 input: 110 -> 55 -> 26 -> 13 -> 13 -> 13 -> 6.
"""
import numpy as np

from .. import nn
from ._memory import MemoryCheckedModel, named
from .alexnet import classifier_head

__all__ = ["ZFNet", "zfnet"]


class ZFNet(MemoryCheckedModel):
    def __init__(self, num_classes=1000, dropout=0.5, in_channels=3, dtype=np.float32):
        super().__init__()
        dt = dict(dtype=dtype)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 96, 7, stride=2, padding=1, **dt), nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
            nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
            nn.Conv2d(96, 256, 5, stride=2, **dt), nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
            nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
            nn.Conv2d(256, 384, 3, padding=1, **dt), nn.ReLU(),
            nn.Conv2d(384, 384, 3, padding=1, **dt), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1, **dt), nn.ReLU(),
            nn.MaxPool2d(3, stride=2),
        )
        self.avgpool, self.classifier = classifier_head(num_classes, dropout, dt)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


def zfnet(num_classes=1000, dropout=0.5, **kwargs):
    """ZFNet (Zeiler & Fergus, "Visualizing and understanding convolutional networks",
    2013): AlexNet with the first layer changed to 7x7 stride 2 and the second to stride
    2, the changes the authors' deconvnet visualisations suggested, on one tower with
    local contrast normalisation after the first two pooling layers: 62,357,608
    parameters for 1000 classes. The head is AlexNet's (adaptive 6x6 pooling, 4096,
    4096), so inputs of at least 53 x 53 work (224 x 224 in the paper)."""
    return named(ZFNet(num_classes, dropout, **kwargs), "zfnet")
