// The reductions' cases (tests/op_registry.h): sum, mean, max and min over every set of dims of a
// 3-d tensor, var, argmax, sum_to, and a sum long enough to be chunked.
#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <string>

#include "op_registry.h"

using namespace lethe;
using namespace lethe::test;

namespace {

using V = std::vector<Tensor>;

const std::vector<std::vector<int>> kDimSets = {{}, {0}, {1}, {2}, {0, 1}, {1, 2}, {0, 2}, {-1}};

// "all", "dim0", "dims0+2".
std::string dims_label(const std::vector<int>& dims) {
  if (dims.empty()) return "all";
  std::string out = dims.size() == 1 ? "dim" : "dims";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i > 0) out += '+';
    out += std::to_string(dims[i]);
  }
  return out;
}

std::vector<int> resolved(const std::vector<int>& dims, int rank) {
  std::vector<int> out;
  for (int d = 0; d < rank && dims.empty(); ++d) out.push_back(d);
  for (int d : dims) out.push_back(d < 0 ? d + rank : d);
  return out;
}

// The shape of x reduced over dims: kept as 1s, or dropped.
Shape reduced_shape(const Shape& shape, const std::vector<int>& dims, bool keepdim) {
  Shape out;
  for (int d = 0; d < shape.size(); ++d) {
    const bool reduced = std::find(dims.begin(), dims.end(), d) != dims.end();
    if (!reduced) out.push_back(shape[d]);
    if (reduced && keepdim) out.push_back(1);
  }
  return out;
}

// For each element of x (row-major), its offset in x reduced over (resolved) dims, keepdim layout.
std::vector<int64_t> reduced_offsets(const Shape& shape, const std::vector<int>& dims) {
  const Shape kept = reduced_shape(shape, dims, true), st = contiguous_strides(kept);
  std::vector<int64_t> out;
  for (int64_t i = 0; i < shape.numel(); ++i) {
    int64_t rem = i, off = 0;
    for (int d = shape.size() - 1; d >= 0; --d) {
      const int64_t idx = rem % shape[d];
      rem /= shape[d];
      off += (kept[d] == 1 ? 0 : idx) * st[d];
    }
    out.push_back(off);
  }
  return out;
}

// Naive float64 reduction of x over (resolved) dims, in the keepdim layout.
std::vector<double> reduce(const Tensor& x, const std::vector<int>& dims, double init, double (*combine)(double, double)) {
  const std::vector<double> v = x.to_vector<double>();
  const std::vector<int64_t> offsets = reduced_offsets(x.shape(), dims);
  std::vector<double> out(reduced_shape(x.shape(), dims, true).numel(), init);
  for (size_t i = 0; i < v.size(); ++i) out[offsets[i]] = combine(out[offsets[i]], v[i]);
  return out;
}

double add2(double a, double b) { return a + b; }
double max2(double a, double b) { return std::max(a, b); }
double min2(double a, double b) { return std::min(a, b); }

int64_t count(const Shape& shape, const std::vector<int>& dims) {
  int64_t n = 1;
  for (int d : dims) n *= shape[d];
  return n;
}

std::vector<double> means(const Tensor& x, const std::vector<int>& dims) {
  std::vector<double> m = reduce(x, dims, 0, add2);
  for (double& e : m) e /= static_cast<double>(count(x.shape(), dims));
  return m;
}

std::vector<double> variances(const Tensor& x, const std::vector<int>& dims, int64_t correction) {
  const std::vector<double> v = x.to_vector<double>(), m = means(x, dims);
  const std::vector<int64_t> offsets = reduced_offsets(x.shape(), dims);
  std::vector<double> out(m.size(), 0.0);
  for (size_t i = 0; i < v.size(); ++i) out[offsets[i]] += (v[i] - m[offsets[i]]) * (v[i] - m[offsets[i]]);
  for (double& e : out) e /= static_cast<double>(count(x.shape(), dims) - correction);
  return out;
}

struct Reducer {
  const char* name;
  Tensor (*op)(const Tensor&, const std::vector<int>&, bool);
  bool keepdim;
  double tolerance;
  std::function<std::vector<double>(const Tensor&, const std::vector<int>&)> ref;  // keepdim layout
};

OpCase reduction_case(const Reducer& r, const std::vector<int>& dims) {
  return {.name = std::string(r.name) + "/" + dims_label(dims),
          .fn = [r, dims](const V& in) { return r.op(in[0], dims, r.keepdim); },
          .forward = ForwardCheck{{distinct({2, 3, 4}, 5, 0.1).grad()},
                                  [r, dims](const V& in) {
                                    const std::vector<int> rd = resolved(dims, in[0].dim());
                                    return expected(r.ref(in[0], rd), reduced_shape(in[0].shape(), rd, r.keepdim));
                                  },
                                  {{DType::f64, r.tolerance, r.tolerance}}},
          .gradcheck = GradCheck{{distinct({3, 4, 5}, 3, 0.05).grad()}},
          .parity = ParityCheck{{distinct({6, 7, 8}, 8, 0.01).grad()}}};
}

OpCase var_case(const std::vector<int>& dims, int64_t correction, const Input& forward_input, double rtol, double atol) {
  return {.name = "var/" + dims_label(dims) + (correction == 1 ? "" : "-correction" + std::to_string(correction)),
          .fn = [dims, correction](const V& in) { return var(in[0], dims, correction); },
          .forward = ForwardCheck{{forward_input},
                                  [dims, correction](const V& in) {
                                    const std::vector<int> rd = resolved(dims, in[0].dim());
                                    return expected(variances(in[0], rd, correction), reduced_shape(in[0].shape(), rd, false));
                                  },
                                  {{DType::f64, rtol, atol}}}};
}

// Index of the first maximum along dim (of the flattened tensor without one).
Reference argmax_reference(std::optional<int> dim) {
  return [dim](const V& in) {
    const Tensor x = dim ? in[0] : in[0].reshape({in[0].numel()});
    const int d = dim.value_or(0);
    const std::vector<double> v = x.to_vector<double>();
    const Shape out_shape = reduced_shape(x.shape(), {d}, false);
    int64_t outer = 1, inner = 1;
    for (int k = 0; k < d; ++k) outer *= x.size(k);
    for (int k = d + 1; k < x.dim(); ++k) inner *= x.size(k);
    std::vector<double> out;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        int64_t best = 0;
        for (int64_t j = 1; j < x.size(d); ++j)
          if (v[(o * x.size(d) + j) * inner + i] > v[(o * x.size(d) + best) * inner + i]) best = j;
        out.push_back(static_cast<double>(best));
      }
    return expected(out, dim ? out_shape : Shape{}, DType::i64);
  };
}

}  // namespace

LETHE_OP_CASES(reduce) {
  std::vector<OpCase> cases;
  const std::vector<Reducer> reductions{
      {"sum", [](const Tensor& x, const std::vector<int>& d, bool k) { return sum(x, d, k); }, false, 1e-14,
       [](const Tensor& x, const std::vector<int>& d) { return reduce(x, d, 0, add2); }},
      {"mean", [](const Tensor& x, const std::vector<int>& d, bool k) { return mean(x, d, k); }, true, 1e-14, means},
      {"max", [](const Tensor& x, const std::vector<int>& d, bool k) { return max(x, d, k); }, false, 0,
       [](const Tensor& x, const std::vector<int>& d) { return reduce(x, d, -INFINITY, max2); }},
      {"min", [](const Tensor& x, const std::vector<int>& d, bool k) { return min(x, d, k); }, true, 0,
       [](const Tensor& x, const std::vector<int>& d) { return reduce(x, d, INFINITY, min2); }},
  };
  for (const Reducer& r : reductions)
    for (const std::vector<int>& dims : kDimSets) cases.push_back(reduction_case(r, dims));
  // 300000 values: chunked on the CPU, over many CUDA blocks.
  cases.push_back({.name = "sum/all-300000-values",
                   .fn = [](const V& in) { return sum(in[0]); },
                   .parity = ParityCheck{{uniform({300000}, 9)}, 1e-5, 1e-4}});

  for (const int64_t correction : {0, 1}) cases.push_back(var_case({0}, correction, uniform({5, 6}, 7), 1e-13, 1e-15));
  OpCase over_two = var_case({0, 2}, 1, distinct({2, 3, 4}, 5, 0.1).grad(), 1e-13, 1e-15);
  over_two.gradcheck = GradCheck{{distinct({3, 4, 5}, 3, 0.05).grad()}};
  cases.push_back(over_two);
  OpCase over_one = var_case({1}, 1, distinct({2, 3, 4}, 5, 0.1).grad(), 1e-13, 1e-15);
  over_one.parity = ParityCheck{{distinct({6, 7, 8}, 8, 0.01).grad()}};
  cases.push_back(over_one);

  cases.push_back({.name = "argmax/dim1",
                   .fn = [](const V& in) { return argmax(in[0], 1); },
                   .forward = ForwardCheck{{distinct({2, 3, 4}, 5, 0.1)}, argmax_reference(1)},
                   .parity = ParityCheck{{distinct({6, 7, 8}, 8, 0.01)}}});
  cases.push_back({.name = "argmax/flattened",
                   .fn = [](const V& in) { return argmax(in[0]); },
                   .forward = ForwardCheck{{distinct({2, 3, 4}, 5, 0.1)}, argmax_reference(std::nullopt)},
                   .parity = ParityCheck{{distinct({6, 7, 8}, 8, 0.01)}}});

  // [2,3,4] summed back to [3,1]: the leading dim and the last.
  cases.push_back({.name = "sum_to/3x1",
                   .fn = [](const V& in) { return sum_to(in[0], {3, 1}); },
                   .forward = ForwardCheck{{uniform({2, 3, 4}, 4).grad()},
                                           [](const V& in) { return expected(reduce(in[0], {0, 2}, 0, add2), {3, 1}); },
                                           {{DType::f64, 1e-14, 1e-14}}},
                   .gradcheck = GradCheck{{uniform({2, 3, 4}, 4).grad()}},
                   .parity = ParityCheck{{uniform({6, 3, 8}, 5).grad()}}});
  return cases;
}
