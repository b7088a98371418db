"""PyTorch twins of cnncore's classic networks, for ``benchmarks/models.py``.

``BUILDERS[name](num_classes=...)`` returns a float32 ``torch.nn.Module`` whose
``state_dict`` has the same keys, in the same order and with the same shapes, as
``cnncore.models.get_model(name)`` with the same arguments, and whose forward pass
computes the same function. Weights are copied by name:
``cnncore_model.load_state_dict(torch_model.state_dict())`` (strict). The
initialisation follows cnncore's (torchvision's), except GoogLeNet's convolutions
(see there).
"""
import collections

import torch
from torch import nn

__all__ = ["BUILDERS", "lenet5", "alexnet", "zfnet", "vgg11", "vgg13", "vgg16", "vgg19",
           "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn", "googlenet", "resnet18",
           "resnet34", "resnet50", "resnet101", "resnet152"]


def _f32(module):
    return module.to(torch.float32)


# ---- LeNet-5 ----------------------------------------------------------------------------

class LeNet5(nn.Module):
    """Conv 5x5 -> 6, pool, activation, conv 5x5 -> 16, pool, activation, then
    400 -> 120 -> 84 -> classes;
    sigmoid and average pooling, or ReLU and max pooling with ``modern=True``. With
    ``input_size=28`` the first convolution pads by 2."""

    def __init__(self, num_classes=10, in_channels=1, input_size=32, modern=False):
        super().__init__()
        pad = 2 if input_size == 28 else 0
        side = ((input_size + 2 * pad - 4) // 2 - 4) // 2
        if side < 1:
            raise ValueError(f"lenet5: input_size must be at least 16, got {input_size}")
        act = nn.ReLU if modern else nn.Sigmoid
        pool = nn.MaxPool2d if modern else nn.AvgPool2d
        self.input_size, self.in_channels = input_size, in_channels
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=pad), pool(2), act(),
            nn.Conv2d(6, 16, 5), pool(2), act(),
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * side * side, 120), act(),
            nn.Linear(120, 84), act(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        s = self.input_size
        if x.ndim != 4 or x.shape[1] != self.in_channels or tuple(x.shape[2:]) != (s, s):
            raise ValueError(f"LeNet5: expected input (N, {self.in_channels}, {s}, {s}), "
                             f"got {tuple(x.shape)}")
        return self.classifier(torch.flatten(self.features(x), 1))


# ---- AlexNet and ZFNet ------------------------------------------------------------------

def _alexnet_head(num_classes, dropout):
    """Pool to 6x6, then dropout, 9216 -> 4096, ReLU, dropout, 4096 -> 4096, ReLU,
    4096 -> classes (``classifier.1/.4/.6``)."""
    return nn.AdaptiveAvgPool2d((6, 6)), nn.Sequential(
        nn.Dropout(dropout),
        nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(4096, 4096), nn.ReLU(inplace=True),
        nn.Linear(4096, num_classes),
    )


def _lrn():
    return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)


class AlexNet(nn.Module):
    """torchvision's single tower (64-192-384-256-256), or with ``original=True`` the
    paper's two towers as ``groups=2`` convolutions (96-256-384-384-256) with local
    response normalisation after conv1 and conv2."""

    def __init__(self, num_classes=1000, dropout=0.5, original=False, in_channels=3):
        super().__init__()
        relu = lambda: nn.ReLU(inplace=True)  # noqa: E731
        if original:
            self.features = nn.Sequential(
                nn.Conv2d(in_channels, 96, 11, stride=4, padding=2), relu(), _lrn(),
                nn.MaxPool2d(3, stride=2),
                nn.Conv2d(96, 256, 5, padding=2, groups=2), relu(), _lrn(),
                nn.MaxPool2d(3, stride=2),
                nn.Conv2d(256, 384, 3, padding=1), relu(),
                nn.Conv2d(384, 384, 3, padding=1, groups=2), relu(),
                nn.Conv2d(384, 256, 3, padding=1, groups=2), relu(),
                nn.MaxPool2d(3, stride=2),
            )
        else:
            self.features = nn.Sequential(
                nn.Conv2d(in_channels, 64, 11, stride=4, padding=2), relu(),
                nn.MaxPool2d(3, stride=2),
                nn.Conv2d(64, 192, 5, padding=2), relu(),
                nn.MaxPool2d(3, stride=2),
                nn.Conv2d(192, 384, 3, padding=1), relu(),
                nn.Conv2d(384, 256, 3, padding=1), relu(),
                nn.Conv2d(256, 256, 3, padding=1), relu(),
                nn.MaxPool2d(3, stride=2),
            )
        self.avgpool, self.classifier = _alexnet_head(num_classes, dropout)

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class ZFNet(nn.Module):
    """AlexNet with a 7x7 stride-2 first layer, a stride-2 second layer and LRN after
    the first two poolings."""

    def __init__(self, num_classes=1000, dropout=0.5, in_channels=3):
        super().__init__()
        relu = lambda: nn.ReLU(inplace=True)  # noqa: E731
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 96, 7, stride=2, padding=1), relu(),
            nn.MaxPool2d(3, stride=2, padding=1), _lrn(),
            nn.Conv2d(96, 256, 5, stride=2), relu(),
            nn.MaxPool2d(3, stride=2, padding=1), _lrn(),
            nn.Conv2d(256, 384, 3, padding=1), relu(),
            nn.Conv2d(384, 384, 3, padding=1), relu(),
            nn.Conv2d(384, 256, 3, padding=1), relu(),
            nn.MaxPool2d(3, stride=2),
        )
        self.avgpool, self.classifier = _alexnet_head(num_classes, dropout)

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


# ---- VGG --------------------------------------------------------------------------------

_VGG_CFGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
          512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],
}


def _vgg_features(cfg, batch_norm, in_channels):
    layers, c = [], in_channels
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, stride=2))
            continue
        layers.append(nn.Conv2d(c, v, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU(inplace=True))
        c = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """``features``, ``avgpool`` (adaptive, 7x7), ``classifier`` (25088 -> 4096 -> 4096
    -> classes, ReLU and dropout after the first two: ``classifier.0/.3/.6``)."""

    def __init__(self, features, num_classes=1000, dropout=0.5):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )
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
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


# ---- GoogLeNet --------------------------------------------------------------------------

GoogLeNetOutputs = collections.namedtuple("GoogLeNetOutputs",
                                          ["logits", "aux_logits2", "aux_logits1"])


class BasicConv2d(nn.Module):
    """Convolution without bias -> BatchNorm (eps 0.001) -> ReLU."""

    def __init__(self, in_channels, out_channels, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Four branches concatenated along channels: 1x1; 1x1 -> 3x3; 1x1 -> 3x3 (5x5 with
    ``true_5x5``); 3x3 max pool (stride 1, ceil mode) -> 1x1."""

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj,
                 true_5x5=False):
        super().__init__()
        k5 = 5 if true_5x5 else 3
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, kernel_size=1),
            BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, kernel_size=1),
            BasicConv2d(ch5x5red, ch5x5, kernel_size=k5, padding=k5 // 2))
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_channels, pool_proj, kernel_size=1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x),
                          self.branch4(x)], 1)


class InceptionAux(nn.Module):
    def __init__(self, in_channels, num_classes, dropout=0.7):
        super().__init__()
        self.conv = BasicConv2d(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        x = torch.flatten(self.conv(nn.functional.adaptive_avg_pool2d(x, (4, 4))), 1)
        return self.fc2(self.dropout(torch.relu(self.fc1(x))))


class GoogLeNet(nn.Module):
    """Inception v1 in torchvision's layout. cnncore's defaults: no auxiliary heads,
    no input transform, 3x3 "5x5" branches, dropout 0.2 before ``fc``. With
    ``aux_logits=True`` training mode returns ``(logits, aux2, aux1)``."""

    def __init__(self, num_classes=1000, aux_logits=False, true_5x5=False, dropout=0.2,
                 dropout_aux=0.7, in_channels=3, transform_input=False):
        super().__init__()
        self.aux_logits, self.transform_input = aux_logits, transform_input
        inc = dict(true_5x5=true_5x5)
        self.conv1 = BasicConv2d(in_channels, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, kernel_size=1)
        self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32, **inc)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64, **inc)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64, **inc)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64, **inc)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64, **inc)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64, **inc)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128, **inc)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128, **inc)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128, **inc)
        if aux_logits:
            self.aux1 = InceptionAux(512, num_classes, dropout_aux)
            self.aux2 = InceptionAux(528, num_classes, dropout_aux)
        else:
            self.aux1 = self.aux2 = None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes)
        # Not cnncore's (torchvision's) truncated normal, std 0.01, for the convolutions:
        # with fresh BatchNorm statistics that shrinks the signal ~1e-12 by the head, so
        # in eval mode the logits would be fc's bias whatever the input and a benchmark's
        # output comparison would check nothing. He-normal (fan in) keeps it O(1).
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, 0.0, 0.01, -2, 2)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @staticmethod
    def _transform(x):
        # ImageNet-normalised input -> torchvision's pretrained GoogLeNet's (mean/std 0.5)
        mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
        return torch.cat([x[:, i:i + 1] * (std[i] / 0.5) + (mean[i] - 0.5) / 0.5
                          for i in range(3)], 1)

    def forward(self, x):
        if self.transform_input:
            x = self._transform(x)
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        x = self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))
        if self.aux_logits and self.training:
            return GoogLeNetOutputs(x, aux2, aux1)
        return x


# ---- ResNet -----------------------------------------------------------------------------

def _conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def _conv1x1(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (carries the stride, torchvision's v1.5) -> 1x1, expansion 4."""
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * 4)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """``conv1 bn1 relu maxpool layer1..layer4 avgpool fc``; projection shortcuts are
    ``downsample.0`` (1x1 conv) and ``downsample.1`` (BatchNorm)."""

    def __init__(self, block, layers, num_classes=1000, in_channels=3,
                 zero_init_residual=False):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
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
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(_conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# ---- builders (same names and defaults as cnncore.models) -------------------------------

def lenet5(num_classes=10, modern=False, in_channels=1, input_size=32):
    """cnncore's default is the 1998 form (sigmoid, average pooling) on 1 x 32 x 32."""
    return _f32(LeNet5(num_classes, in_channels, input_size, modern))


def alexnet(num_classes=1000, original=False, dropout=0.5, **kwargs):
    return _f32(AlexNet(num_classes, dropout, original, **kwargs))


def zfnet(num_classes=1000, dropout=0.5, **kwargs):
    return _f32(ZFNet(num_classes, dropout, **kwargs))


def _vgg(cfg, bn, num_classes, in_channels=3, **kwargs):
    return _f32(VGG(_vgg_features(_VGG_CFGS[cfg], bn, in_channels), num_classes, **kwargs))


def vgg11(num_classes=1000, **kwargs):
    return _vgg("A", False, num_classes, **kwargs)


def vgg13(num_classes=1000, **kwargs):
    return _vgg("B", False, num_classes, **kwargs)


def vgg16(num_classes=1000, **kwargs):
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


def googlenet(num_classes=1000, aux_logits=False, true_5x5=False, **kwargs):
    return _f32(GoogLeNet(num_classes, aux_logits, true_5x5, **kwargs))


def resnet18(num_classes=1000, **kwargs):
    return _f32(ResNet(BasicBlock, [2, 2, 2, 2], num_classes, **kwargs))


def resnet34(num_classes=1000, **kwargs):
    return _f32(ResNet(BasicBlock, [3, 4, 6, 3], num_classes, **kwargs))


def resnet50(num_classes=1000, **kwargs):
    return _f32(ResNet(Bottleneck, [3, 4, 6, 3], num_classes, **kwargs))


def resnet101(num_classes=1000, **kwargs):
    return _f32(ResNet(Bottleneck, [3, 4, 23, 3], num_classes, **kwargs))


def resnet152(num_classes=1000, **kwargs):
    return _f32(ResNet(Bottleneck, [3, 8, 36, 3], num_classes, **kwargs))


BUILDERS = {
    "lenet5": lenet5, "alexnet": alexnet, "zfnet": zfnet,
    "vgg11": vgg11, "vgg13": vgg13, "vgg16": vgg16, "vgg19": vgg19,
    "vgg11_bn": vgg11_bn, "vgg13_bn": vgg13_bn, "vgg16_bn": vgg16_bn, "vgg19_bn": vgg19_bn,
    "googlenet": googlenet,
    "resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50,
    "resnet101": resnet101, "resnet152": resnet152,
}
