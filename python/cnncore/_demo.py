"""``cnncore demo``: a convolution you can check by hand."""
import numpy as np

from . import _runtime, ops


def demo():
    # A 6x6 ramp x[i, j] = j convolved with the Sobel x-derivative kernel.
    x = np.tile(np.arange(6, dtype=np.float64), (6, 1))[None, None]
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)[None, None]
    corr = ops.conv2d(x, sobel)                      # cross-correlation, 'valid'
    true = ops.conv2d(x, sobel, flip=True)           # true convolution flips the kernel
    same = ops.conv2d(x, sobel, padding="same", padding_mode="replicate")
    print(f"cnncore demo (kernel level {_runtime.get_isa()}, {_runtime.get_num_threads()} threads)")
    print("input: 6x6 ramp x[i, j] = j; kernel: Sobel d/dx [[-1,0,1],[-2,0,2],[-1,0,1]]")
    print("cross-correlation, valid padding (every value is 8 = slope 1 x weight 8):")
    print(corr[0, 0])
    print("true convolution (kernel flipped, so every value is -8):")
    print(true[0, 0])
    print("'same' padding, replicate border (edges see half the slope: 4):")
    print(same[0, 0])
    ok = np.all(corr == 8) and np.all(true == -8)
    print("check:", "OK" if ok else "FAILED")
    return 0 if ok else 1
