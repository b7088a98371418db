"""Low-level operations: NumPy arrays in, NumPy arrays out.

Every array result has the dtype of the inputs (float32 or float64); every
op ``name`` has a twin ``name_backward`` returning the gradients of its array
inputs. Layout is NCHW (see ``docs/conv2d.md``).
"""
from ._conv import conv2d, conv2d_backward, conv2d_output_shape

__all__ = ["conv2d", "conv2d_backward", "conv2d_output_shape"]
