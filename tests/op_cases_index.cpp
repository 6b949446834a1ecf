// The joining and indexing ops' cases (tests/op_registry.h): concat and stack on every dim (a
// transposed input, more inputs than autograd records per op), index_select and gather on every
// dim with int64 and int32 indices that repeat.
#include <string>

#include "op_registry.h"

using namespace lethe;
using namespace lethe::test;

namespace {

using V = std::vector<Tensor>;

// [outer, extent, inner] around dim d.
struct Around {
  int64_t outer = 1, extent = 1, inner = 1;
};
Around around(const Shape& s, int d) {
  Around a;
  for (int k = 0; k < d; ++k) a.outer *= s[k];
  for (int k = d + 1; k < s.size(); ++k) a.inner *= s[k];
  a.extent = s[d];
  return a;
}

Tensor concat_reference(const V& xs, int d) {
  std::vector<std::vector<double>> vs;
  for (const Tensor& x : xs) vs.push_back(x.contiguous().to_vector<double>());
  Shape shape = xs[0].shape();
  shape[d] = 0;
  for (const Tensor& x : xs) shape[d] += x.size(d);
  std::vector<double> out;
  for (int64_t o = 0; o < around(shape, d).outer; ++o)
    for (size_t k = 0; k < xs.size(); ++k) {
      const Around a = around(xs[k].shape(), d);
      for (int64_t j = 0; j < a.extent; ++j)
        for (int64_t i = 0; i < a.inner; ++i) out.push_back(vs[k][(o * a.extent + j) * a.inner + i]);
    }
  return expected(out, shape);
}

// n indices in [0, limit), with repeats when n > limit (and usually before).
std::vector<int64_t> some_indices(int64_t n, int64_t limit, int64_t seed) {
  std::vector<int64_t> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = (i * 7 + seed * 3 + i * i) % limit;
  return v;
}

Input index_input(const std::vector<int64_t>& v, const Shape& shape, DType dtype) {
  std::string what = "index [";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) what += ',';
    what += std::to_string(v[i]);
  }
  return made(what + "] " + std::string(dtype_name(dtype)) + shape.str(),
              [=] { return Tensor::from_vector(v, shape).to(dtype); });
}

std::string index_label(int d, DType dtype) { return "/dim" + std::to_string(d) + "-" + std::string(dtype_name(dtype)); }

// x's slices along d at the index's positions, any dtype of x.
Tensor index_select_reference(const V& t, int d) {
  const Tensor& x = t[0];
  const std::vector<double> xv = x.to(DType::f64).to_vector<double>();
  const std::vector<int64_t> idx = t[1].to(DType::i64).to_vector<int64_t>();
  const Around a = around(x.shape(), d);
  std::vector<double> out;
  for (int64_t o = 0; o < a.outer; ++o)
    for (int64_t k : idx)
      for (int64_t i = 0; i < a.inner; ++i) out.push_back(xv[(o * a.extent + k) * a.inner + i]);
  Shape shape = x.shape();
  shape[d] = static_cast<int64_t>(idx.size());
  return expected(out, shape, x.dtype());
}

// out[p] = x[p with its dim-d coordinate replaced by index[p]].
Tensor gather_reference(const V& t, int d) {
  const std::vector<double> xv = t[0].to_vector<double>();
  const std::vector<int64_t> index = t[1].to(DType::i64).to_vector<int64_t>();
  const Shape xs = contiguous_strides(t[0].shape()), index_shape = t[1].shape();
  std::vector<double> out;
  for (int64_t p = 0; p < index_shape.numel(); ++p) {
    int64_t rest = p, off = 0;
    for (int k = index_shape.size() - 1; k >= 0; --k) {
      const int64_t c = rest % index_shape[k];
      rest /= index_shape[k];
      off += (k == d ? index[p] : c) * xs[k];
    }
    out.push_back(xv[off]);
  }
  return expected(out, index_shape);
}

}  // namespace

LETHE_OP_CASES(index) {
  std::vector<OpCase> cases;
  for (int d : {0, 1, 2}) {
    Shape a{2, 3, 4}, b{2, 3, 4}, c{2, 3, 4};
    a[d] = 1, b[d] = 3, c[d] = 2;
    const Inputs in{uniform(a, 1).grad(), uniform(b, 2).grad(), uniform(c, 3).grad()};
    cases.push_back({.name = "concat/dim" + std::to_string(d),
                     .fn = [d](const V& t) { return concat(t, d); },
                     .forward = ForwardCheck{in, [d](const V& t) { return concat_reference(t, d); }, {{DType::f64, 0, 0}}},
                     .gradcheck = GradCheck{in},
                     .parity = ParityCheck{in, 0, 0}});
  }
  // A negative dim, a non-contiguous input and one that needs no gradient.
  const Inputs mixed{uniform({3, 2}, 4).grad(),
                     made("the transpose of " + uniform({2, 3}, 5).what, [] { return random_tensor({2, 3}, 5).t(); })};
  cases.push_back({.name = "concat/dim-1-transposed-input",
                   .fn = [](const V& t) { return concat(t, -1); },
                   .forward = ForwardCheck{mixed, [](const V& t) { return concat_reference(t, 1); }, {{DType::f64, 0, 0}}},
                   .gradcheck = GradCheck{mixed}});
  // More inputs than autograd records per op: joined in groups when recorded, in one step when not.
  Inputs many;
  for (uint64_t i = 0; i < 70; ++i) many.push_back(uniform({1, 2}, 100 + i).grad());
  for (int d : {0, 1})
    cases.push_back({.name = "concat/70-inputs-dim" + std::to_string(d),
                     .fn = [d](const V& t) { return concat(t, d); },
                     .forward = ForwardCheck{many, [d](const V& t) { return concat_reference(t, d); }, {{DType::f64, 0, 0}}},
                     .gradcheck = GradCheck{many}});

  const Inputs three{uniform({2, 3}, 10).grad(), uniform({2, 3}, 11).grad(), uniform({2, 3}, 12).grad()};
  for (int d : {0, 1, 2, -1})
    cases.push_back({.name = "stack/dim" + std::to_string(d),
                     .fn = [d](const V& t) { return stack(t, d); },
                     .forward = ForwardCheck{three,
                                             [d](const V& t) {
                                               const int nd = d < 0 ? d + t[0].dim() + 1 : d;
                                               V parts;
                                               for (const Tensor& x : t) parts.push_back(x.unsqueeze(nd));
                                               return concat_reference(parts, nd);
                                             },
                                             {{DType::f64, 0, 0}}},
                     .gradcheck = GradCheck{three},
                     .parity = ParityCheck{three, 0, 0}});

  const Shape shape{3, 4, 5};
  for (int d : {0, 1, 2})
    for (DType dtype : {DType::i64, DType::i32}) {
      const Input index = index_input(some_indices(7, shape[d], d), {7}, dtype);  // more picks than slices: repeats
      cases.push_back({.name = "index_select" + index_label(d, dtype),
                       .fn = [d](const V& t) { return index_select(t[0], d, t[1]); },
                       .forward = ForwardCheck{{uniform(shape, 20).grad(), index},
                                               [d](const V& t) { return index_select_reference(t, d); },
                                               {{DType::f64, 0, 0}}},
                       .gradcheck = GradCheck{{uniform(shape, 21).grad(), index}},
                       .parity = ParityCheck{{uniform(shape, 22).grad(), index}}});
    }
  // Integer data can be selected too.
  cases.push_back({.name = "index_select/int64-data",
                   .fn = [](const V& t) { return index_select(t[0], 0, t[1]); },
                   .forward = ForwardCheck{{index_input({5, 6, 7}, {3}, DType::i64), index_input({2, 2, 0}, {3}, DType::i64)},
                                           [](const V& t) { return index_select_reference(t, 0); },
                                           {{DType::f64, 0, 0}}}});

  for (int d : {0, 1, 2})
    for (DType dtype : {DType::i64, DType::i32}) {
      // Smaller than x off the dim, larger along it (repeats).
      Shape index_shape{2, 3, 4};
      index_shape[d] = 6;
      const Input index = index_input(some_indices(index_shape.numel(), shape[d], d + 1), index_shape, dtype);
      cases.push_back({.name = "gather" + index_label(d, dtype),
                       .fn = [d](const V& t) { return gather(t[0], d, t[1]); },
                       .forward = ForwardCheck{{uniform(shape, 30).grad(), index},
                                               [d](const V& t) { return gather_reference(t, d); },
                                               {{DType::f64, 0, 0}}},
                       .gradcheck = GradCheck{{uniform(shape, 31).grad(), index}},
                       .parity = ParityCheck{{uniform(shape, 32).grad(), index}}});
    }
  // Picking each row's label, as a loss does.
  cases.push_back({.name = "gather/row-labels",
                   .fn = [](const V& t) { return gather(t[0], 1, t[1]); },
                   .forward = ForwardCheck{{uniform({4, 3}, 33), index_input({2, 0, 1, 2}, {4, 1}, DType::i64)},
                                           [](const V& t) { return gather_reference(t, 1); },
                                           {{DType::f64, 0, 0}}}});
  return cases;
}
