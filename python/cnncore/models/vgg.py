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
    """VGG-11 (Simonyan & Zisserman, "Very deep convolutional networks for large-scale
    image recognition", 2014, configuration A: 8 convolutions 3x3 with ReLU in five blocks
    separated by 2x2 max pooling, then 4096, 4096, classes with dropout): 132,863,336
    parameters for 1000 classes. As torchvision: an adaptive 7x7 average pooling before the
    classifier (so inputs of at least 32 x 32 work; the paper used 224 x 224, where it
    changes nothing) and no LRN (the paper's A-LRN variant). ``vgg11_bn`` adds batch
    normalisation after each convolution (not in the paper)."""
    return _vgg("A", False, num_classes, **kwargs)


def vgg13(num_classes=1000, **kwargs):
    """VGG-13 (Simonyan & Zisserman, 2014, configuration B: 10 convolutions 3x3):
    133,047,848 parameters for 1000 classes; see :func:`vgg11` for what differs from the
    paper."""
    return _vgg("B", False, num_classes, **kwargs)


def vgg16(num_classes=1000, **kwargs):
    """VGG-16 (Simonyan & Zisserman, 2014, configuration D: 13 convolutions 3x3 in blocks
    of 2, 2, 3, 3, 3, then 4096, 4096, classes): 138,357,544 parameters for 1000 classes,
    the paper's count. Differences as :func:`vgg11` (adaptive 7x7 pooling; ``_bn`` adds
    batch normalisation)."""
    return _vgg("D", False, num_classes, **kwargs)


def vgg19(num_classes=1000, **kwargs):
    """VGG-19 (Simonyan & Zisserman, 2014, configuration E: 16 convolutions 3x3):
    143,667,240 parameters for 1000 classes; see :func:`vgg11` for what differs from the
    paper."""
    return _vgg("E", False, num_classes, **kwargs)


def vgg11_bn(num_classes=1000, **kwargs):
    """VGG-11 with batch normalisation (Simonyan & Zisserman, 2014, configuration A: 8
    convolutions 3x3), batch norm after each convolution (not in the paper): 132,868,840
    parameters for 1000 classes; see :func:`vgg11` for what differs from the paper."""
    return _vgg("A", True, num_classes, **kwargs)


def vgg13_bn(num_classes=1000, **kwargs):
    """VGG-13 with batch normalisation (Simonyan & Zisserman, 2014, configuration B: 10
    convolutions 3x3), batch norm after each convolution (not in the paper): 133,053,736
    parameters for 1000 classes; see :func:`vgg11` for what differs from the paper."""
    return _vgg("B", True, num_classes, **kwargs)


def vgg16_bn(num_classes=1000, **kwargs):
    """VGG-16 with batch normalisation (Simonyan & Zisserman, 2014, configuration D: 13
    convolutions 3x3), batch norm after each convolution (not in the paper): 138,365,992
    parameters for 1000 classes; see :func:`vgg11` for what differs from the paper."""
    return _vgg("D", True, num_classes, **kwargs)


def vgg19_bn(num_classes=1000, **kwargs):
    """VGG-19 with batch normalisation (Simonyan & Zisserman, 2014, configuration E: 16
    convolutions 3x3), batch norm after each convolution (not in the paper): 143,678,248
    parameters for 1000 classes; see :func:`vgg11` for what differs from the paper."""
    return _vgg("E", True, num_classes, **kwargs)
