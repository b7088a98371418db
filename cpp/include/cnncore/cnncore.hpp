// The whole public C++ API of cnncore.
#pragma once

#include "cnncore/conv.hpp"
#include "cnncore/error.hpp"
#include "cnncore/layers.hpp"
#include "cnncore/local_conv.hpp"
#include "cnncore/optim.hpp"
#include "cnncore/pad.hpp"
#include "cnncore/pool.hpp"
#include "cnncore/runtime.hpp"
#include "cnncore/tensor.hpp"
