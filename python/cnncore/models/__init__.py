"""The classic networks, with torchvision's parameter names and counts.

``get_model(name, **kwargs)`` builds one by name; ``MODELS`` lists the names.

Each is a :class:`MemoryCheckedModel`: a call on an input large enough to matter
first estimates the forward pass's activation memory and raises ``ValueError``,
before running anything, when it is over :func:`cnncore.get_memory_limit`
(``model.estimate_activation_memory(input_shape)`` gives the figure; see
``cnncore/models/_memory.py`` for how it is estimated and when).
"""
from ._memory import MemoryCheckedModel
from .alexnet import AlexNet, alexnet
from .googlenet import GoogLeNet, googlenet
from .lenet import LeNet5, lenet5
from .resnet import ResNet, resnet18, resnet34, resnet50, resnet101, resnet152
from .vgg import VGG, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn
from .zfnet import ZFNet, zfnet

def _with_weights(builder):
    """``builder`` taking ``weights=PATH`` too: a .pth/.pt (torch, read without torch),
    .safetensors (torchvision, timm or cnncore) or .npz file loaded into the new model."""
    import functools

    @functools.wraps(builder)
    def build(*args, weights=None, **kwargs):
        model = builder(*args, **kwargs)
        if weights is not None:
            from ..weights import load_into
            load_into(model, weights)
        return model
    return build


MODELS = {
    "lenet5": lenet5, "alexnet": alexnet, "zfnet": zfnet,
    "vgg11": vgg11, "vgg13": vgg13, "vgg16": vgg16, "vgg19": vgg19,
    "vgg11_bn": vgg11_bn, "vgg13_bn": vgg13_bn, "vgg16_bn": vgg16_bn, "vgg19_bn": vgg19_bn,
    "googlenet": googlenet,
    "resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50, "resnet101": resnet101,
    "resnet152": resnet152,
}


for _name, _fn in list(MODELS.items()):
    MODELS[_name] = globals()[_name] = _with_weights(_fn)
del _name, _fn


def get_model(name, **kwargs):
    """Build the model called ``name`` (one of :data:`MODELS`)."""
    try:
        fn = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of: "
                         f"{', '.join(sorted(MODELS))}") from None
    return fn(**kwargs)


__all__ = ["MODELS", "get_model", "MemoryCheckedModel", "LeNet5", "lenet5", "AlexNet",
           "alexnet", "ZFNet", "zfnet",
           "VGG", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn",
           "vgg19_bn", "GoogLeNet", "googlenet", "ResNet", "resnet18", "resnet34", "resnet50",
           "resnet101", "resnet152"]
