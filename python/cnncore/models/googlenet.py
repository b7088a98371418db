"""GoogLeNet / Inception v1 (Szegedy et al., 2014) in torchvision's layout.

Every convolution is a ``BasicConv2d`` (conv without bias -> BatchNorm(eps
0.001) -> ReLU), as torchvision builds it; each Inception module has four
branches (1x1; 1x1 -> 3x3; 1x1 -> "5x5"; 3x3 max pool -> 1x1) concatenated
along channels. torchvision's "5x5" branch is really 3x3 (6,624,904 parameters
without the auxiliary heads); ``true_5x5=True`` gives the paper's 5x5 kernels.
``aux_logits=True`` adds the two auxiliary classifiers (after 4a and 4d); in
training mode the model then returns ``(logits, aux2, aux1)``. ``transform_input``
is torchvision's input re-normalisation for its pretrained weights.
"""
import collections

import numpy as np

from .. import functional as F
from .. import nn
from ._memory import MemoryCheckedModel, named
from ..tensor import cat

__all__ = ["GoogLeNet", "GoogLeNetOutputs", "googlenet"]

GoogLeNetOutputs = collections.namedtuple("GoogLeNetOutputs",
                                          ["logits", "aux_logits2", "aux_logits1"])


class BasicConv2d(nn.Module):
    def __init__(self, in_channels, out_channels, dtype=np.float32, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, dtype=dtype, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001, dtype=dtype)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj,
                 true_5x5=False, dtype=np.float32):
        super().__init__()
        k5 = 5 if true_5x5 else 3
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1, dtype=dtype)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, kernel_size=1, dtype=dtype),
            BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1, dtype=dtype))
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, kernel_size=1, dtype=dtype),
            BasicConv2d(ch5x5red, ch5x5, kernel_size=k5, padding=k5 // 2, dtype=dtype))
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_channels, pool_proj, kernel_size=1, dtype=dtype))

    def forward(self, x):
        return cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    def __init__(self, in_channels, num_classes, dropout=0.7, dtype=np.float32):
        super().__init__()
        self.conv = BasicConv2d(in_channels, 128, kernel_size=1, dtype=dtype)
        self.fc1 = nn.Linear(2048, 1024, dtype=dtype)
        self.fc2 = nn.Linear(1024, num_classes, dtype=dtype)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        x = self.conv(F.adaptive_avg_pool2d(x, (4, 4))).flatten(1)
        return self.fc2(self.dropout(F.relu(self.fc1(x))))


class GoogLeNet(MemoryCheckedModel):
    def __init__(self, num_classes=1000, aux_logits=False, true_5x5=False, dropout=0.2,
                 dropout_aux=0.7, in_channels=3, init_weights=True, transform_input=False,
                 dtype=np.float32):
        super().__init__()
        self.transform_input = transform_input
        dt = dict(dtype=dtype)
        inc = dict(true_5x5=true_5x5, dtype=dtype)
        self.aux_logits = aux_logits
        self.conv1 = BasicConv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, **dt)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, kernel_size=1, **dt)
        self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1, **dt)
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
            self.aux1 = InceptionAux(512, num_classes, dropout_aux, **dt)
            self.aux2 = InceptionAux(528, num_classes, dropout_aux, **dt)
        else:
            self.aux1 = self.aux2 = None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes, **dt)
        if init_weights:
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.init.trunc_normal_(m.weight, 0.0, 0.01, -2, 2)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)

    def _transform_input(self, x):
        # torchvision's pretrained GoogLeNet expects inputs normalised with
        # mean 0.5, std 0.5; this maps ImageNet-normalised inputs onto that.
        mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
        chans = [x[:, i:i + 1] * (std[i] / 0.5) + (mean[i] - 0.5) / 0.5 for i in range(3)]
        return cat(chans, 1)

    def forward(self, x):
        if self.transform_input:
            x = self._transform_input(x)
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        x = self.fc(self.dropout(self.avgpool(x).flatten(1)))
        if self.aux_logits and self.training:
            return GoogLeNetOutputs(x, aux2, aux1)
        return x


def googlenet(num_classes=1000, aux_logits=False, true_5x5=False, **kwargs):
    """GoogLeNet (Szegedy et al., "Going deeper with convolutions", 2014): 22 layers, nine
    Inception modules (parallel 1x1, 3x3 and 5x5 convolutions and 3x3 max pooling, with 1x1
    reductions, concatenated), global average pooling and one linear layer; two auxiliary
    classifiers during training. This is torchvision's version: batch normalisation after
    every convolution (the paper had none; it used LRN), and the "5x5" branch with 3x3
    kernels: 6,624,904 parameters for 1000 classes, 13,004,888 with ``aux_logits=True``.
    ``true_5x5=True`` restores the paper's 5x5 kernels (7,005,832). Inputs of at least
    32 x 32 work (224 x 224 in the paper)."""
    return named(GoogLeNet(num_classes, aux_logits, true_5x5, **kwargs), "googlenet")
