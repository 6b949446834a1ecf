// Pooling beyond the op registry's table (tests/op_cases_pool.cpp has the forward, gradient and
// parity checks of max_pool2d, avg_pool2d and global_avg_pool2d): ties and NaN in max pooling,
// the errors, and the bits of nearest upsampling's backward.
#include <cmath>
#include <cstring>
#include <limits>

#include "harness.h"
#include "kernels/common/pool.h"

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

TEST_CASE("upsample_nearest2d: the CPU's row loops give upsample_grad's bits, at scale 2 and 3") {
  // The CPU sums scale 2's blocks in a loop of its own (upsample_grad_2x2); the CUDA kernel and
  // other scales call upsample_grad. Random sums in another order would differ in some bits, and
  // a block of negative zeros sums to +0 (the sum starts from 0).
  for (const int scale : {2, 3}) {
    CAPTURE(scale);
    const int64_t N = 2, C = 3, H = 5, W = 7;
    const Tensor x = Tensor::zeros({N, C, H, W}).set_requires_grad();
    std::vector<float> gy = Tensor::randn({N, C, H * scale, W * scale}, 9, 0).to_vector<float>();
    for (int64_t i = 0; i < scale; ++i)
      for (int64_t j = 0; j < scale; ++j) gy[static_cast<size_t>(i * W * scale + j)] = -0.0f;  // plane 0, block (0, 0)
    const Tensor gy_t = Tensor::from_vector(gy, {N, C, H * scale, W * scale});
    const std::vector<float> gx =
        autograd::grad(sum(mul(upsample_nearest2d(x, scale), gy_t)), {x})[0].to_vector<float>();
    PoolGeometry g;
    g.height = H, g.width = W, g.out_h = H * scale, g.out_w = W * scale;
    g.kernel_h = g.kernel_w = g.stride_h = g.stride_w = scale;
    size_t differ = 0;
    for (int64_t p = 0; p < N * C; ++p)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w) {
          const float want = upsample_grad(g, gy.data() + p * g.out_plane(), h, w);
          const float got = gx[static_cast<size_t>((p * H + h) * W + w)];
          differ += std::memcmp(&want, &got, sizeof(float)) != 0;
        }
    CHECK(differ == 0);
    CHECK_FALSE(std::signbit(gx[0]));
  }
}
