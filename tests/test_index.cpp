#include <string>

#include "harness.h"

using namespace lethe;

namespace {

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

std::vector<double> concat_reference(const std::vector<Tensor>& xs, int d) {
  std::vector<std::vector<double>> vs;
  for (const Tensor& x : xs) vs.push_back(x.to_vector<double>());
  const Around first = around(xs[0].shape(), d);
  std::vector<double> out;
  for (int64_t o = 0; o < first.outer; ++o)
    for (size_t k = 0; k < xs.size(); ++k) {
      const Around a = around(xs[k].shape(), d);
      for (int64_t j = 0; j < a.extent; ++j)
        for (int64_t i = 0; i < a.inner; ++i) out.push_back(vs[k][(o * a.extent + j) * a.inner + i]);
    }
  return out;
}

// n indices in [0, limit), with repeats when n > limit (and usually before).
std::vector<int64_t> some_indices(int64_t n, int64_t limit, int64_t seed) {
  std::vector<int64_t> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = (i * 7 + seed * 3 + i * i) % limit;
  return v;
}

Tensor index_tensor(const std::vector<int64_t>& v, const Shape& shape, DType dtype = DType::i64) {
  return Tensor::from_vector(v, shape).to(dtype);
}

std::vector<double> gather_reference(const Tensor& x, int d, const std::vector<int64_t>& index, const Shape& index_shape) {
  const std::vector<double> xv = x.to_vector<double>();
  const Shape xs = contiguous_strides(x.shape());
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
  return out;
}

}  // namespace

TEST_CASE("concat: forward against reference on every dim, gradcheck and parity") {
  for (int d : {0, 1, 2}) {
    INFO("dim ", d);
    Shape a{2, 3, 4}, b{2, 3, 4}, c{2, 3, 4};
    a[d] = 1;
    b[d] = 3;
    c[d] = 2;
    const std::vector<Tensor> xs{test::random_tensor(a, 1), test::random_tensor(b, 2), test::random_tensor(c, 3)};
    const Tensor out = concat(xs, d);
    Shape expected_shape{2, 3, 4};
    expected_shape[d] = 6;
    CHECK(out.shape() == expected_shape);
    test::expect_close(out, concat_reference(xs, d), 0, 0);
    std::vector<Tensor> in;
    for (const Tensor& x : xs) in.push_back(x.clone().set_requires_grad());
    auto fn = [d](const std::vector<Tensor>& t) { return concat(t, d); };
    test::gradcheck(fn, in);
    test::check_parity(fn, in, 0, 0);
  }
  // Negative dims, a non-contiguous input and an input that needs no gradient.
  const Tensor x = test::random_tensor({3, 2}, 4).set_requires_grad();
  const Tensor y = test::random_tensor({2, 3}, 5).t();
  test::expect_close(concat({x, y}, -1), concat_reference({x, y.contiguous()}, 1), 0, 0);
  test::gradcheck([&](const std::vector<Tensor>& t) { return concat({t[0], y}, -1); }, {x});
}

TEST_CASE("concat: more inputs than autograd records per op still get gradients") {
  std::vector<Tensor> xs;
  for (int i = 0; i < 70; ++i) xs.push_back(test::random_tensor({1, 2}, 100 + i).set_requires_grad());
  const Tensor out = concat(xs, 0);
  CHECK(out.shape() == Shape{70, 2});
  test::expect_close(out, concat_reference(xs, 0), 0, 0);
  sum(mul(out, out)).backward();
  for (const Tensor& x : xs) test::expect_close(x.grad(), mul(x, 2.0), 0, 0);
  // Without gradients the list is joined in one step.
  NoGradGuard no_grad;
  test::expect_close(concat(xs, 1), concat_reference(xs, 1), 0, 0);
}

TEST_CASE("concat: errors name the shapes") {
  const Tensor a = test::random_tensor({2, 3}, 6), b = test::random_tensor({3, 4}, 7);
  CHECK_THROWS_WITH_AS(concat({a, b}, 0),
                       doctest::Contains("concat: tensor 1 has shape [3,4] but tensor 0 has [2,3]; shapes must match except in dim 0"),
                       Error);
  CHECK_THROWS_WITH_AS(concat({a, test::random_tensor({2}, 8)}, 0), doctest::Contains("tensor 1 has shape [2]"), Error);
  CHECK_THROWS_WITH_AS(concat({a, a.to(DType::f32)}, 0),
                       doctest::Contains("concat: tensor 1 is float32[2,3] on cpu but tensor 0 is float64[2,3] on cpu"), Error);
  CHECK_THROWS_WITH_AS(concat({}, 0), doctest::Contains("concat: needs at least one tensor"), Error);
  CHECK_THROWS_WITH_AS(concat({a}, 2), doctest::Contains("concat: dim 2 out of range"), Error);
}

TEST_CASE("stack: forward on every dim, gradcheck, parity and errors") {
  const std::vector<Tensor> xs{test::random_tensor({2, 3}, 10), test::random_tensor({2, 3}, 11),
                               test::random_tensor({2, 3}, 12)};
  for (int d : {0, 1, 2, -1}) {
    INFO("dim ", d);
    const int nd = d < 0 ? d + 3 : d;
    std::vector<Tensor> parts;
    for (const Tensor& x : xs) parts.push_back(x.unsqueeze(nd).contiguous());
    const Tensor out = stack(xs, d);
    Shape shape{2, 3};
    shape.insert(nd, 3);
    CHECK(out.shape() == shape);
    test::expect_close(out, concat_reference(parts, nd), 0, 0);
    std::vector<Tensor> in;
    for (const Tensor& x : xs) in.push_back(x.clone().set_requires_grad());
    auto fn = [d](const std::vector<Tensor>& t) { return stack(t, d); };
    test::gradcheck(fn, in);
    test::check_parity(fn, in, 0, 0);
  }
  CHECK_THROWS_WITH_AS(stack({xs[0], test::random_tensor({3, 2}, 13)}, 0),
                       doctest::Contains("stack: tensor 1 has shape [3,2] but tensor 0 has [2,3]; stack needs equal shapes"),
                       Error);
  CHECK_THROWS_WITH_AS(stack(xs, 3), doctest::Contains("stack: dim 3 out of range for a 3-d tensor"), Error);
}

TEST_CASE("index_select: forward with repeated indices on every dim, gradcheck and parity") {
  const Shape shape{3, 4, 5};
  const Tensor x = test::random_tensor(shape, 20);
  const std::vector<double> xv = x.to_vector<double>();
  for (int d : {0, 1, 2}) {
    for (DType idt : {DType::i64, DType::i32}) {
      INFO("dim ", d, " ", std::string(dtype_name(idt)));
      const std::vector<int64_t> idx = some_indices(7, shape[d], d);  // more picks than slices: repeats
      const Around a = around(shape, d);
      std::vector<double> expected;
      for (int64_t o = 0; o < a.outer; ++o)
        for (int64_t k = 0; k < 7; ++k)
          for (int64_t i = 0; i < a.inner; ++i) expected.push_back(xv[(o * a.extent + idx[k]) * a.inner + i]);
      const Tensor index = index_tensor(idx, {7}, idt);
      test::expect_close(index_select(x, d, index), expected, 0, 0);
      auto fn = [d, index](const std::vector<Tensor>& t) { return index_select(t[0], d, index); };
      test::gradcheck(fn, {test::random_tensor({3, 4, 5}, 21).set_requires_grad()});
      test::check_parity(fn, {test::random_tensor({3, 4, 5}, 22).set_requires_grad()});
    }
  }
  // The gradient of a repeated index accumulates; an unselected slice gets zero.
  Tensor v = test::random_tensor({4}, 23).set_requires_grad();
  index_select(v, 0, index_tensor({2, 0, 2, 2}, {4})).backward(Tensor::ones({4}, DType::f64));
  test::expect_close(v.grad(), {1, 0, 3, 0}, 0, 0);
  // Integer data can be selected too.
  test::expect_close(index_select(index_tensor({5, 6, 7}, {3}), 0, index_tensor({2, 2, 0}, {3})), {7, 7, 5}, 0, 0);
}

TEST_CASE("index_select: errors") {
  const Tensor x = test::random_tensor({3, 4}, 24);
  CHECK_THROWS_WITH_AS(index_select(x, 1, index_tensor({0, 3, 4}, {3})),
                       doctest::Contains("index_select: index 4 at position 2 is outside [0, 4) (dim 1 of float64[3,4] on cpu)"),
                       Error);
  CHECK_THROWS_WITH_AS(index_select(x, 0, index_tensor({-1}, {1}, DType::i32)), doctest::Contains("index -1 at position 0"), Error);
  CHECK_THROWS_WITH_AS(index_select(x, 0, Tensor::zeros({2})),
                       doctest::Contains("index_select: index must be int32 or int64, got float32[2] on cpu"), Error);
  CHECK_THROWS_WITH_AS(index_select(x, 0, index_tensor({0, 1}, {1, 2})),
                       doctest::Contains("index_select: index must be 1-d, got int64[1,2] on cpu"), Error);
  if (test::cuda_or_skip("index_select range check on CUDA")) {
    CHECK_THROWS_WITH_AS(index_select(x.to(Device::cuda()), 1, index_tensor({0, 3, 4}, {3}).to(Device::cuda())),
                         doctest::Contains("index_select: index 4 at position 2 is outside [0, 4)"), Error);
  }
}

TEST_CASE("gather: forward against reference on every dim, gradcheck and parity") {
  const Tensor x = test::random_tensor({3, 4, 5}, 30);
  for (int d : {0, 1, 2}) {
    for (DType idt : {DType::i64, DType::i32}) {
      INFO("dim ", d, " ", std::string(dtype_name(idt)));
      // Smaller than x off the dim, larger along it (repeats).
      Shape ishape{2, 3, 4};
      ishape[d] = 6;
      const std::vector<int64_t> idx = some_indices(ishape.numel(), x.size(d), d + 1);
      const Tensor index = index_tensor(idx, ishape, idt);
      test::expect_close(gather(x, d, index), gather_reference(x, d, idx, ishape), 0, 0);
      auto fn = [d, index](const std::vector<Tensor>& t) { return gather(t[0], d, index); };
      test::gradcheck(fn, {test::random_tensor({3, 4, 5}, 31).set_requires_grad()});
      test::check_parity(fn, {test::random_tensor({3, 4, 5}, 32).set_requires_grad()});
    }
  }
  // Picking each row's label, as a loss does.
  const Tensor logits = test::random_tensor({4, 3}, 33);
  const std::vector<int64_t> labels{2, 0, 1, 2};
  test::expect_close(gather(logits, 1, index_tensor(labels, {4, 1})), gather_reference(logits, 1, labels, {4, 1}), 0, 0);
}

TEST_CASE("gather: errors") {
  const Tensor x = test::random_tensor({3, 4}, 34);
  CHECK_THROWS_WITH_AS(gather(x, 1, index_tensor({0, 1, 2, 3, 4, 0}, {3, 2})),
                       doctest::Contains("gather: index 4 at [2,0] is outside [0, 4) (dim 1 of float64[3,4] on cpu)"), Error);
  CHECK_THROWS_WITH_AS(gather(x, 1, index_tensor({0, 1, 2}, {3})),
                       doctest::Contains("gather: index int64[3] on cpu must have the rank of input float64[3,4] on cpu"), Error);
  CHECK_THROWS_WITH_AS(gather(x, 1, index_tensor({0, 0, 0, 0}, {4, 1})),
                       doctest::Contains("gather: index shape [4,1] exceeds input shape [3,4] in dim 0"), Error);
  CHECK_THROWS_WITH_AS(gather(x, 1, Tensor::zeros({3, 1}, DType::f64)),
                       doctest::Contains("gather: index must be int32 or int64, got float64[3,1] on cpu"), Error);
}
