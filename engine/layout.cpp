#include "engine/layout.h"

namespace lethe {

Layout layout_of(const Tensor& t) {
  Layout l;
  l.rank = t.dim();
  for (int d = 0; d < l.rank; ++d) {
    l.size[d] = t.shape()[d];
    l.stride[d] = t.strides()[d];
  }
  return l;
}

Layout broadcast_layout(const Tensor& t, const Shape& shape) {
  Layout l;
  l.rank = shape.size();
  const int lead = shape.size() - t.dim();
  LETHE_CHECK(lead >= 0, "broadcast", t.shape().str(), " cannot broadcast to ", shape.str());
  for (int d = 0; d < l.rank; ++d) {
    l.size[d] = shape[d];
    if (d < lead) continue;
    const int64_t own = t.shape()[d - lead];
    LETHE_CHECK(own == shape[d] || own == 1, "broadcast", t.shape().str(), " cannot broadcast to ",
                shape.str());
    l.stride[d] = own == 1 ? 0 : t.strides()[d - lead];
  }
  return l;
}

}  // namespace lethe
