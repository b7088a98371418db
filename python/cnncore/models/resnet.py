"""ResNet (He et al., 2015) in torchvision's layout: ``conv1 bn1 relu maxpool
layer1..layer4 avgpool fc``; ``BasicBlock`` (two 3x3) for 18/34, ``Bottleneck``
(1x1 -> 3x3 -> 1x1, expansion 4, stride on the 3x3 like torchvision's v1.5) for
50/101/152; projection shortcuts are ``downsample.0`` (1x1 conv) and
``downsample.1`` (BatchNorm). resnet18: 11,689,512 parameters; resnet50:
25,557,032.
"""
import numpy as np

from .. import functional as F
from .. import nn
from ._memory import MemoryCheckedModel, named

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet34", "resnet50",
           "resnet101", "resnet152"]


def conv3x3(cin, cout, stride=1, groups=1, dilation=1, dtype=np.float32):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, groups=groups, bias=False,
                     dilation=dilation, dtype=dtype)


def conv1x1(cin, cout, stride=1, dtype=np.float32):
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False, dtype=dtype)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, dtype=np.float32):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride, dtype=dtype)
        self.bn1 = nn.BatchNorm2d(planes, dtype=dtype)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(planes, planes, dtype=dtype)
        self.bn2 = nn.BatchNorm2d(planes, dtype=dtype)
        self.downsample = downsample

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, dtype=np.float32):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes, dtype=dtype)
        self.bn1 = nn.BatchNorm2d(planes, dtype=dtype)
        self.conv2 = conv3x3(planes, planes, stride, dtype=dtype)
        self.bn2 = nn.BatchNorm2d(planes, dtype=dtype)
        self.conv3 = conv1x1(planes, planes * 4, dtype=dtype)
        self.bn3 = nn.BatchNorm2d(planes * 4, dtype=dtype)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class ResNet(MemoryCheckedModel):
    def __init__(self, block, layers, num_classes=1000, in_channels=3,
                 zero_init_residual=False, init_weights=True, dtype=np.float32):
        super().__init__()
        self._dtype = dtype
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False, dtype=dtype)
        self.bn1 = nn.BatchNorm2d(64, dtype=dtype)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes, dtype=dtype)
        if init_weights:
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
            if zero_init_residual:
                for m in self.modules():
                    if isinstance(m, Bottleneck):
                        nn.init.zeros_(m.bn3.weight)
                    elif isinstance(m, BasicBlock):
                        nn.init.zeros_(m.bn2.weight)

    def _make_layer(self, block, planes, blocks, stride=1):
        dt = self._dtype
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride,
                                               dtype=dt),
                                       nn.BatchNorm2d(planes * block.expansion, dtype=dt))
        layers = [block(self.inplanes, planes, stride, downsample, dtype=dt)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, dtype=dt))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def resnet18(num_classes=1000, **kwargs):
    """ResNet-18 (He, Zhang, Ren & Sun, "Deep residual learning for image recognition",
    2015): a 7x7/2 convolution and 3x3/2 max pooling, four stages of two basic blocks
    (two 3x3 convolutions with batch normalisation and an identity shortcut; a 1x1
    projection where the shape changes), global average pooling and one linear layer:
    11,689,512 parameters for 1000 classes, as the paper and torchvision. Inputs of at
    least 32 x 32 work (224 x 224 in the paper; on 32 x 32 images the last stage sees 1 x 1
    maps, which the CIFAR variant of the paper avoids with a 3x3 stem)."""
    return named(ResNet(BasicBlock, [2, 2, 2, 2], num_classes, **kwargs), "resnet18")


def resnet34(num_classes=1000, **kwargs):
    """ResNet-34 (He et al., "Deep residual learning for image recognition", 2015): basic
    blocks (two 3x3 convolutions and a shortcut) in stages of 3, 4, 6, 3; 21,797,672
    parameters for 1000 classes, as the paper and torchvision (see :func:`resnet18`)."""
    return named(ResNet(BasicBlock, [3, 4, 6, 3], num_classes, **kwargs), "resnet34")


def resnet50(num_classes=1000, **kwargs):
    """ResNet-50 (He et al., 2015): bottleneck blocks (1x1 reduce, 3x3, 1x1 expand by 4)
    in stages of 3, 4, 6, 3; 25,557,032 parameters for 1000 classes. As torchvision's v1.5
    the stride of a downsampling block sits on its 3x3 convolution (the paper put it on the
    first 1x1), which is slightly more accurate and costs more multiply-adds."""
    return named(ResNet(Bottleneck, [3, 4, 6, 3], num_classes, **kwargs), "resnet50")


def resnet101(num_classes=1000, **kwargs):
    """ResNet-101 (He et al., 2015): bottleneck stages of 3, 4, 23, 3; 44,549,160
    parameters for 1000 classes (torchvision's v1.5 stride placement, as :func:`resnet50`)."""
    return named(ResNet(Bottleneck, [3, 4, 23, 3], num_classes, **kwargs), "resnet101")


def resnet152(num_classes=1000, **kwargs):
    """ResNet-152 (He et al., "Deep residual learning for image recognition", 2015):
    bottleneck blocks in stages of 3, 8, 36, 3; 60,192,808 parameters for 1000 classes
    (the downsampling stride on the 3x3 convolution, torchvision's v1.5, as
    :func:`resnet50`)."""
    return named(ResNet(Bottleneck, [3, 8, 36, 3], num_classes, **kwargs), "resnet152")
