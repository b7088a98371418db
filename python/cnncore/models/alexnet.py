"""AlexNet (Krizhevsky, Sutskever & Hinton, 2012).

``alexnet()`` is torchvision's single-tower layout (61,100,840 parameters;
names ``features.N`` / ``classifier.N`` so its weights load directly).
``alexnet(original=True)`` is the paper's two-tower net on one device: the
towers become ``groups=2`` convolutions (conv2, conv4, conv5 see only their own
tower; conv3 sees both), 96-256-384-384-256 channels, local response
normalisation after conv1 and conv2 (60,965,224 parameters).
"""
import numpy as np

from .. import nn
from ._memory import MemoryCheckedModel, named

__all__ = ["AlexNet", "alexnet"]


class AlexNet(MemoryCheckedModel):
    def __init__(self, num_classes=1000, dropout=0.5, original=False, in_channels=3,
                 dtype=np.float32):
        super().__init__()
        dt = dict(dtype=dtype)
        self.in_channels = in_channels
        if original:
            self.features = nn.Sequential(
                nn.Conv2d(in_channels, 96, 11, stride=4, padding=2, **dt), nn.ReLU(),
                nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
                nn.MaxPool2d(3, stride=2),
                nn.Conv2d(96, 256, 5, padding=2, groups=2, **dt), nn.ReLU(),
                nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
                nn.MaxPool2d(3, stride=2),
                nn.Conv2d(256, 384, 3, padding=1, **dt), nn.ReLU(),
                nn.Conv2d(384, 384, 3, padding=1, groups=2, **dt), nn.ReLU(),
                nn.Conv2d(384, 256, 3, padding=1, groups=2, **dt), nn.ReLU(),
                nn.MaxPool2d(3, stride=2),
            )
        else:
            self.features = nn.Sequential(
                nn.Conv2d(in_channels, 64, 11, stride=4, padding=2, **dt), nn.ReLU(),
                nn.MaxPool2d(3, stride=2),
                nn.Conv2d(64, 192, 5, padding=2, **dt), nn.ReLU(),
                nn.MaxPool2d(3, stride=2),
                nn.Conv2d(192, 384, 3, padding=1, **dt), nn.ReLU(),
                nn.Conv2d(384, 256, 3, padding=1, **dt), nn.ReLU(),
                nn.Conv2d(256, 256, 3, padding=1, **dt), nn.ReLU(),
                nn.MaxPool2d(3, stride=2),
            )
        self.avgpool, self.classifier = classifier_head(num_classes, dropout, dt)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


def classifier_head(num_classes, dropout, dt):
    """AlexNet's head, shared with ZFNet: pool to 6x6, then three fully connected
    layers (torchvision's ``classifier.N`` names)."""
    return nn.AdaptiveAvgPool2d((6, 6)), nn.Sequential(
        nn.Dropout(dropout),
        nn.Linear(256 * 6 * 6, 4096, **dt), nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(4096, 4096, **dt), nn.ReLU(),
        nn.Linear(4096, num_classes, **dt),
    )


def alexnet(num_classes=1000, original=False, dropout=0.5, **kwargs):
    """AlexNet (Krizhevsky, Sutskever & Hinton, "ImageNet classification with deep
    convolutional neural networks", 2012): five convolutions (11x11/4, 5x5, 3x3 x 3) with
    ReLU and overlapping 3x3/2 max pooling, then two 4096-unit layers with dropout.

    ``original=False`` (default) is torchvision's single-tower layout: 64-192-384-256-256
    channels, no local response normalisation, 61,100,840 parameters for 1000 classes, and
    weight names that load torchvision's checkpoints. ``original=True`` is the paper's
    network as one device runs it: the two GPU towers become ``groups=2`` convolutions
    (conv2, conv4 and conv5 see only their own tower's maps, conv3 sees both),
    96-256-384-384-256 channels and LRN (size 5, alpha 1e-4, beta 0.75, k 2) after the
    first two ReLUs: 60,965,224 parameters (the paper: 60 million). Both add torchvision's
    adaptive 6x6 average pooling before the classifier, so any input of at least 63 x 63
    works (the paper used 224 x 224 crops; 227 makes its arithmetic exact). The paper's
    PCA colour augmentation is :class:`cnncore.data.transforms.RGBIntensityJitter`."""
    return named(AlexNet(num_classes, dropout, original, **kwargs), "alexnet")
