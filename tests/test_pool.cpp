#include <cmath>
#include <limits>

#include "harness.h"

using namespace lethe;

namespace {

Pool2dOptions pool(int k, int s, int p) {
  Pool2dOptions o;
  o.kernel_h = o.kernel_w = k;
  o.stride_h = o.stride_w = s;
  o.pad_h = o.pad_w = p;
  return o;
}

// Naive float64 pooling: max over in-bounds positions, or the sum over them divided by kh·kw.
std::vector<double> reference_pool(const Tensor& x, const Pool2dOptions& o, bool is_max) {
  const std::vector<double> xv = x.to(DType::f64).to_vector<double>();
  const int64_t P = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = (H + 2 * o.pad_h - o.kernel_h) / o.stride_h + 1, OW = (W + 2 * o.pad_w - o.kernel_w) / o.stride_w + 1;
  std::vector<double> y;
  for (int64_t p = 0; p < P; ++p)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        double best = -INFINITY, sum = 0;
        for (int64_t i = 0; i < o.kernel_h; ++i)
          for (int64_t j = 0; j < o.kernel_w; ++j) {
            const int64_t h = oh * o.stride_h - o.pad_h + i, w = ow * o.stride_w - o.pad_w + j;
            if (h < 0 || h >= H || w < 0 || w >= W) continue;
            best = std::max(best, xv[(p * H + h) * W + w]);
            sum += xv[(p * H + h) * W + w];
          }
        y.push_back(is_max ? best : sum / static_cast<double>(o.kernel_h * o.kernel_w));
      }
  return y;
}

const Pool2dOptions kOptions[] = {pool(2, 2, 0), pool(3, 2, 1), pool(3, 1, 1), pool(2, 1, 0), pool(3, 3, 0)};

using V = std::vector<Tensor>;

}  // namespace

TEST_CASE("max_pool2d, avg_pool2d: forward against float64 loops") {
  for (const Pool2dOptions& o : kOptions) {
    INFO("kernel ", o.kernel_h, " stride ", o.stride_h, " padding ", o.pad_h);
    for (DType dt : {DType::f64, DType::f32}) {
      const Tensor x = test::random_tensor({2, 3, 7, 8}, 1, -1, 1, dt);
      test::expect_close(max_pool2d(x, o), reference_pool(x, o, true), 0, 0);
      // Recorded for autograd, the forward also tracks each window's argmax: the same values.
      test::expect_close(max_pool2d(x.clone().set_requires_grad(), o), reference_pool(x, o, true), 0, 0);
      test::expect_close(avg_pool2d(x, o), reference_pool(x, o, false), 1e-6, 1e-7);
    }
  }
  Pool2dOptions rect;
  rect.kernel_h = 3, rect.kernel_w = 2, rect.stride_h = 1, rect.stride_w = 2, rect.pad_h = 1, rect.pad_w = 0;
  const Tensor x = test::random_tensor({1, 2, 5, 6}, 2);
  CHECK(max_pool2d(x, rect).shape() == Shape{1, 2, 5, 3});
  test::expect_close(max_pool2d(x, rect), reference_pool(x, rect, true), 0, 0);
  test::expect_close(avg_pool2d(x, rect), reference_pool(x, rect, false), 1e-14, 1e-15);
}

TEST_CASE("max_pool2d: padding never wins, ties go to the first position, NaN propagates") {
  // All negative: a zero from the padding must not be the max.
  const Tensor neg = test::random_tensor({1, 1, 4, 4}, 3, -2, -1);
  test::expect_close(max_pool2d(neg, pool(3, 2, 1)), reference_pool(neg, pool(3, 2, 1), true), 0, 0);

  // A constant plane: every window ties; the gradient goes to each window's first position.
  const Tensor flat = Tensor::full({1, 1, 4, 4}, 0.5, DType::f64).set_requires_grad();
  const Tensor g = autograd::grad(sum(max_pool2d(flat, pool(2, 2, 0))), {flat})[0];
  test::expect_close(g, {1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0}, 0, 0);
  // Overlapping windows (stride 1): position (0,0) is first in window (0,0) only, and so on.
  const Tensor g2 = autograd::grad(sum(max_pool2d(flat, pool(2, 1, 0))), {flat})[0];
  test::expect_close(g2, {1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0}, 0, 0);

  std::vector<double> v(16, 1.0);
  v[5] = std::numeric_limits<double>::quiet_NaN();
  for (const bool recorded : {false, true}) {
    Tensor x = Tensor::from_vector(v, {1, 1, 4, 4});
    if (recorded) x.set_requires_grad();
    const std::vector<double> y = max_pool2d(x, pool(2, 2, 0)).detach().to_vector<double>();
    CHECK(std::isnan(y[0]));
    CHECK(y[1] == 1.0);
  }
}

TEST_CASE("max_pool2d, avg_pool2d: gradcheck") {
  for (const Pool2dOptions& o : kOptions) {
    INFO("kernel ", o.kernel_h, " stride ", o.stride_h, " padding ", o.pad_h);
    // Distinct values keep every window's max away from ties (central differences need that).
    test::gradcheck([o](const V& in) { return max_pool2d(in[0], o); }, {test::distinct_tensor({2, 2, 5, 6}, 11).set_requires_grad()});
    test::gradcheck([o](const V& in) { return avg_pool2d(in[0], o); }, {test::random_tensor({2, 2, 5, 6}, 12).set_requires_grad()});
  }
}

TEST_CASE("global_avg_pool2d: forward and gradcheck") {
  const Tensor x = test::random_tensor({2, 3, 4, 5}, 21);
  const std::vector<double> xv = x.to_vector<double>();
  std::vector<double> ref(6, 0.0);
  for (size_t i = 0; i < xv.size(); ++i) ref[i / 20] += xv[i] / 20;
  const Tensor y = global_avg_pool2d(x);
  CHECK(y.shape() == Shape{2, 3});
  test::expect_close(y, ref, 1e-14, 1e-15);
  test::gradcheck([](const V& in) { return global_avg_pool2d(in[0]); }, {test::random_tensor({2, 3, 4, 5}, 22).set_requires_grad()});
  CHECK_THROWS_WITH_AS(global_avg_pool2d(Tensor::zeros({2, 3})), "global_avg_pool2d: expects a float32 or float64 x [N,C,H,W], got float32[2,3] on cpu", Error);
}

TEST_CASE("max_pool2d, avg_pool2d: errors name the op and the reason") {
  const Tensor x = Tensor::zeros({1, 1, 4, 4});
  CHECK_THROWS_WITH_AS(max_pool2d(x, pool(2, 2, 2)), doctest::Contains("max_pool2d: invalid options kernel [2,2] stride [2,2] padding [2,2]"), Error);
  CHECK_THROWS_WITH_AS(avg_pool2d(x, pool(5, 1, 0)), "avg_pool2d: kernel [5,5] does not fit input float32[1,1,4,4] on cpu with padding [0,0]", Error);
  CHECK_THROWS_WITH_AS(max_pool2d(Tensor::zeros({4, 4}), pool(2, 2, 0)), doctest::Contains("max_pool2d: expects a float32 or float64 x [N,C,H,W]"), Error);
  CHECK_THROWS_WITH_AS(max_pool2d(Tensor::zeros({1, 1, 4, 4}, DType::i64), pool(2, 2, 0)), doctest::Contains("got int64[1,1,4,4]"), Error);
  CHECK_THROWS_WITH_AS(avg_pool2d(x, pool(2, 0, 0)), doctest::Contains("stride [0,0]"), Error);
}

TEST_CASE("max_pool2d, avg_pool2d, global_avg_pool2d: CPU/CUDA parity") {
  for (const Pool2dOptions& o : kOptions) {
    test::check_parity([o](const V& in) { return max_pool2d(in[0], o); }, {test::distinct_tensor({4, 3, 9, 10}, 31).set_requires_grad()});
    test::check_parity([o](const V& in) { return avg_pool2d(in[0], o); }, {test::random_tensor({4, 3, 9, 10}, 32).set_requires_grad()});
  }
  test::check_parity([](const V& in) { return global_avg_pool2d(in[0]); }, {test::random_tensor({4, 3, 7, 7}, 33).set_requires_grad()});
}
