// Pooling beyond the op registry's table (tests/op_cases_pool.cpp has the forward, gradient and
// parity checks of max_pool2d, avg_pool2d and global_avg_pool2d): ties and NaN in max pooling,
// and the errors.
#include <cmath>
#include <limits>

#include "harness.h"

using namespace lethe;
using test::pool_options;

TEST_CASE("max_pool2d: ties go to the first position, NaN propagates") {
  // A constant plane: every window ties; the gradient goes to each window's first position.
  const Tensor flat = Tensor::full({1, 1, 4, 4}, 0.5, DType::f64).set_requires_grad();
  const Tensor g = autograd::grad(sum(max_pool2d(flat, pool_options(2, 2, 0))), {flat})[0];
  test::expect_close(g, {1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0}, 0, 0);
  // Overlapping windows (stride 1): position (0,0) is first in window (0,0) only, and so on.
  const Tensor g2 = autograd::grad(sum(max_pool2d(flat, pool_options(2, 1, 0))), {flat})[0];
  test::expect_close(g2, {1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0}, 0, 0);

  std::vector<double> v(16, 1.0);
  v[5] = std::numeric_limits<double>::quiet_NaN();
  for (const bool recorded : {false, true}) {
    Tensor x = Tensor::from_vector(v, {1, 1, 4, 4});
    if (recorded) x.set_requires_grad();
    const std::vector<double> y = max_pool2d(x, pool_options(2, 2, 0)).detach().to_vector<double>();
    CHECK(std::isnan(y[0]));
    CHECK(y[1] == 1.0);
  }
}

TEST_CASE("max_pool2d, avg_pool2d, global_avg_pool2d: errors name the op and the reason") {
  const Tensor x = Tensor::zeros({1, 1, 4, 4});
  CHECK_THROWS_WITH_AS(max_pool2d(x, pool_options(2, 2, 2)), doctest::Contains("max_pool2d: invalid options kernel [2,2] stride [2,2] padding [2,2]"), Error);
  CHECK_THROWS_WITH_AS(avg_pool2d(x, pool_options(5, 1, 0)), "avg_pool2d: kernel [5,5] does not fit input float32[1,1,4,4] on cpu with padding [0,0]", Error);
  CHECK_THROWS_WITH_AS(max_pool2d(Tensor::zeros({4, 4}), pool_options(2, 2, 0)), doctest::Contains("max_pool2d: expects a float32 or float64 x [N,C,H,W]"), Error);
  CHECK_THROWS_WITH_AS(max_pool2d(Tensor::zeros({1, 1, 4, 4}, DType::i64), pool_options(2, 2, 0)), doctest::Contains("got int64[1,1,4,4]"), Error);
  CHECK_THROWS_WITH_AS(avg_pool2d(x, pool_options(2, 0, 0)), doctest::Contains("stride [0,0]"), Error);
  CHECK_THROWS_WITH_AS(global_avg_pool2d(Tensor::zeros({2, 3})), "global_avg_pool2d: expects a float32 or float64 x [N,C,H,W], got float32[2,3] on cpu", Error);
}
