// Joining and indexing beyond the op registry's table (tests/op_cases_index.cpp has the forward,
// gradient and parity checks of concat, stack, index_select and gather): a repeated index's
// gradient, and the errors.
#include "harness.h"

using namespace lethe;

namespace {

Tensor index_tensor(const std::vector<int64_t>& v, const Shape& shape, DType dtype = DType::i64) {
  return Tensor::from_vector(v, shape).to(dtype);
}

}  // namespace

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

TEST_CASE("stack: errors") {
  const std::vector<Tensor> xs{test::random_tensor({2, 3}, 10), test::random_tensor({2, 3}, 11),
                               test::random_tensor({2, 3}, 12)};
  CHECK_THROWS_WITH_AS(stack({xs[0], test::random_tensor({3, 2}, 13)}, 0),
                       doctest::Contains("stack: tensor 1 has shape [3,2] but tensor 0 has [2,3]; stack needs equal shapes"),
                       Error);
  CHECK_THROWS_WITH_AS(stack(xs, 3), doctest::Contains("stack: dim 3 out of range for a 3-d tensor"), Error);
}

TEST_CASE("index_select: the gradient of a repeated index accumulates, an unselected slice gets zero") {
  Tensor v = test::random_tensor({4}, 23).set_requires_grad();
  index_select(v, 0, index_tensor({2, 0, 2, 2}, {4})).backward(Tensor::ones({4}, DType::f64));
  test::expect_close(v.grad(), {1, 0, 3, 0}, 0, 0);
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
