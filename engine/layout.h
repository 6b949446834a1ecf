#pragma once
// Builds kernel Layouts from tensors.
#include "engine/tensor.h"
#include "kernels/common/layout.h"

namespace lethe {

// `t`'s own layout.
Layout layout_of(const Tensor& t);
// `t` read as if broadcast to `shape` (missing leading dims and size-1 dims get stride 0).
Layout broadcast_layout(const Tensor& t, const Shape& shape);

}  // namespace lethe
