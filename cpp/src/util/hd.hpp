// CNNCORE_HD marks a function that runs on the host and, when the translation
// unit is compiled by nvcc, on a CUDA device too: the geometry helpers and
// the CUDA backend's kernel bodies (cpp/src/cuda/bodies.hpp). In a plain C++
// build it is empty, so the same code is what the CPU tests exercise.
#pragma once

#if defined(__CUDACC__)
#define CNNCORE_HD __host__ __device__
#else
#define CNNCORE_HD
#endif
