"""VGG (Simonyan & Zisserman, 2014) in torchvision's layout: ``features``
(3x3 convolutions, 2x2 max pooling), ``avgpool`` (adaptive, 7 x 7) and
``classifier`` (25088 -> 4096 -> 4096 -> num_classes). ``_bn`` variants put
batch normalisation after each convolution. vgg16: 138,357,544 parameters.
"""
import numpy as np

from .. import nn
from ._memory import MemoryCheckedModel, named

__all__ = ["VGG", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn",
           "vgg19_bn"]

_CFGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512,
          "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512,
          512, 512, 512, "M"],
}

_NAMES = {"A": "vgg11", "B": "vgg13", "D": "vgg16", "E": "vgg19"}


def make_layers(cfg, batch_norm=False, in_channels=3, dtype=np.float32):
    layers = []
    c = in_channels
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, stride=2))
            continue
        layers.append(nn.Conv2d(c, v, 3, padding=1, dtype=dtype))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v, dtype=dtype))
        layers.append(nn.ReLU())
        c = v
    return nn.Sequential(*layers)


class VGG(MemoryCheckedModel):
    def __init__(self, features, num_classes=1000, init_weights=True, dropout=0.5,
                 dtype=np.float32):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096, dtype=dtype), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(4096, 4096, dtype=dtype), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(4096, num_classes, dtype=dtype),
        )
        if init_weights:
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0.0, 0.01)
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


def _vgg(cfg, bn, num_classes, in_channels=3, **kwargs):
    dtype = kwargs.get("dtype", np.float32)
    name = _NAMES[cfg] + ("_bn" if bn else "")
    return named(VGG(make_layers(_CFGS[cfg], bn, in_channels, dtype), num_classes, **kwargs),
                 name)


def vgg11(num_classes=1000, **kwargs):
    """VGG-11 (configuration A); inputs of at least 32 x 32."""
    return _vgg("A", False, num_classes, **kwargs)


def vgg13(num_classes=1000, **kwargs):
    return _vgg("B", False, num_classes, **kwargs)


def vgg16(num_classes=1000, **kwargs):
    """VGG-16 (configuration D): 138,357,544 parameters."""
    return _vgg("D", False, num_classes, **kwargs)


def vgg19(num_classes=1000, **kwargs):
    return _vgg("E", False, num_classes, **kwargs)


def vgg11_bn(num_classes=1000, **kwargs):
    return _vgg("A", True, num_classes, **kwargs)


def vgg13_bn(num_classes=1000, **kwargs):
    return _vgg("B", True, num_classes, **kwargs)


def vgg16_bn(num_classes=1000, **kwargs):
    return _vgg("D", True, num_classes, **kwargs)


def vgg19_bn(num_classes=1000, **kwargs):
    return _vgg("E", True, num_classes, **kwargs)
