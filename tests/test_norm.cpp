// batch_norm, group_norm and dropout beyond the op registry's table (tests/op_cases_norm.cpp has
// their gradchecks and CPU/CUDA parity): batch_norm's forward against float64 with the running
// statistics it writes in place (or leaves alone), thread-count independence, the errors;
// group_norm's values and gradients independent of the thread count and of the input's strides;
// dropout's Philox mask bit for bit, its identities, the errors.
#include <cmath>
#include <cstring>
#include <string>

#include "kernels/cpu/parallel.h"
#include "harness.h"
#include "kernels/common/philox.h"

using namespace lethe;

namespace {

constexpr double kEps = 1e-5, kMomentum = 0.1;

// Naive float64 batch norm of x viewed as [N, C, HW]. Training uses the batch statistics and
// updates rm/rv (unbiased variance); eval uses rm/rv. Empty w/b mean no affine.
std::vector<double> batch_norm_reference(const std::vector<double>& x, int64_t N, int64_t C, int64_t HW,
                                         const std::vector<double>& w, const std::vector<double>& b,
                                         std::vector<double>& rm, std::vector<double>& rv, bool training) {
  std::vector<double> y(x.size());
  const int64_t count = N * HW;
  for (int64_t c = 0; c < C; ++c) {
    auto at = [&](int64_t n, int64_t s) { return (n * C + c) * HW + s; };
    double mean = rm[c], var = rv[c];
    if (training) {
      mean = 0;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t s = 0; s < HW; ++s) mean += x[at(n, s)];
      mean /= static_cast<double>(count);
      var = 0;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t s = 0; s < HW; ++s) var += (x[at(n, s)] - mean) * (x[at(n, s)] - mean);
      var /= static_cast<double>(count);
      rm[c] = (1 - kMomentum) * rm[c] + kMomentum * mean;
      rv[c] = (1 - kMomentum) * rv[c] + kMomentum * var * static_cast<double>(count) / static_cast<double>(count - 1);
    }
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < HW; ++s) {
        double v = (x[at(n, s)] - mean) / std::sqrt(var + kEps);
        if (!w.empty()) v = v * w[c] + b[c];
        y[at(n, s)] = v;
      }
  }
  return y;
}

struct BnCase {
  Shape shape;
  bool affine;
};

}  // namespace

TEST_CASE("batch_norm: training forward and running-statistics update against float64 reference") {
  for (const BnCase& bc : {BnCase{{4, 3, 2, 5}, true}, BnCase{{6, 3}, true}, BnCase{{5, 2, 3, 1}, false}}) {
    INFO("input ", bc.shape.str(), std::string(bc.affine ? " affine" : " no affine"));
    const int64_t N = bc.shape[0], C = bc.shape[1], HW = bc.shape.size() == 4 ? bc.shape[2] * bc.shape[3] : 1;
    const Tensor x = test::random_tensor(bc.shape, 1, -2, 3);
    const Tensor w = bc.affine ? test::random_tensor({C}, 2, 0.5, 1.5) : Tensor();
    const Tensor b = bc.affine ? test::random_tensor({C}, 3) : Tensor();
    Tensor rm = test::random_tensor({C}, 4), rv = test::random_tensor({C}, 5, 0.5, 2);
    std::vector<double> erm = rm.to_vector<double>(), erv = rv.to_vector<double>();
    const std::vector<double> expected = batch_norm_reference(
        x.to_vector<double>(), N, C, HW, bc.affine ? w.to_vector<double>() : std::vector<double>{},
        bc.affine ? b.to_vector<double>() : std::vector<double>{}, erm, erv, true);
    test::expect_close(batch_norm(x, w, b, rm, rv, true, kMomentum, kEps), expected, 1e-12, 1e-12);
    test::expect_close(rm, erm, 1e-13, 1e-14);
    test::expect_close(rv, erv, 1e-13, 1e-14);
  }
}

TEST_CASE("batch_norm: training without running statistics skips the update") {
  const Tensor x = test::random_tensor({4, 2}, 6);
  std::vector<double> rm{0, 0}, rv{1, 1};
  const std::vector<double> expected = batch_norm_reference(x.to_vector<double>(), 4, 2, 1, {}, {}, rm, rv, true);
  test::expect_close(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true), expected, 1e-12, 1e-12);
}

TEST_CASE("batch_norm: eval normalises with the running statistics and leaves them alone") {
  const Tensor x = test::random_tensor({3, 4, 2, 2}, 7);
  const Tensor w = test::random_tensor({4}, 8), b = test::random_tensor({4}, 9);
  const Tensor rm = test::random_tensor({4}, 10), rv = test::random_tensor({4}, 11, 0.5, 2);
  std::vector<double> erm = rm.to_vector<double>(), erv = rv.to_vector<double>();
  const std::vector<double> expected = batch_norm_reference(x.to_vector<double>(), 3, 4, 4, w.to_vector<double>(),
                                                            b.to_vector<double>(), erm, erv, false);
  test::expect_close(batch_norm(x, w, b, rm, rv, false, kMomentum, kEps), expected, 1e-12, 1e-12);
  test::expect_close(rm, erm, 0, 0);
  test::expect_close(rv, erv, 0, 0);
}

TEST_CASE("batch_norm: the running-statistics write is allowed while the input needs grad") {
  Tensor x = test::random_tensor({4, 3}, 12);
  x.set_requires_grad();
  Tensor w = test::random_tensor({3}, 13).set_requires_grad();
  Tensor rm = Tensor::zeros({3}, DType::f64), rv = Tensor::ones({3}, DType::f64);
  const Tensor y = batch_norm(x, w, Tensor(), rm, rv, true);
  sum(mul(y, y)).backward();
  CHECK(x.grad().defined());
  CHECK(w.grad().defined());
  CHECK(rm.to_vector<double>() != std::vector<double>(3, 0.0));
}

TEST_CASE("batch_norm: results do not depend on the thread count") {
  const Tensor x = test::random_tensor({64, 3, 16, 16}, 40, -1, 1, DType::f32);
  const int threads = num_threads();
  set_num_threads(1);
  Tensor rm1 = Tensor::zeros({3}), rv1 = Tensor::ones({3});
  const std::vector<float> one = batch_norm(x, Tensor(), Tensor(), rm1, rv1, true).to_vector<float>();
  set_num_threads(2);
  Tensor rm2 = Tensor::zeros({3}), rv2 = Tensor::ones({3});
  const std::vector<float> two = batch_norm(x, Tensor(), Tensor(), rm2, rv2, true).to_vector<float>();
  set_num_threads(threads);
  CHECK(one == two);
  CHECK(rv1.to_vector<float>() == rv2.to_vector<float>());
}

TEST_CASE("batch_norm: each channel is summed in index order, as if alone, bit for bit") {
  // The CPU sums eight channels together; each must still see its elements in (sample, position)
  // order. float64 values of magnitudes 2^-40 to 2^40 make the order show in the bits of the mean
  // (through the running mean) and of Σ dy (the bias gradient). 11 channels: a block of eight and
  // one of three.
  const int64_t N = 5, C = 11, HW = 9;
  const auto wide = [](uint64_t seed) {
    std::vector<double> v = test::random_tensor({N, C, 3, 3}, seed, -1, 1).to_vector<double>();
    const std::vector<double> e = test::random_tensor({N, C, 3, 3}, seed + 1, -40, 40).to_vector<double>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = std::ldexp(v[i], static_cast<int>(e[i]));
    return v;
  };
  const std::vector<double> xv = wide(80), gv = wide(82);
  Tensor x = Tensor::from_vector(xv, {N, C, 3, 3}), bias = Tensor::zeros({C}, DType::f64);
  bias.set_requires_grad();
  Tensor rm = Tensor::zeros({C}, DType::f64), rv = Tensor::ones({C}, DType::f64);
  sum(mul(batch_norm(x, Tensor(), bias, rm, rv, true), Tensor::from_vector(gv, {N, C, 3, 3}))).backward();
  const std::vector<double> running = rm.to_vector<double>(), dbias = bias.grad().to_vector<double>();
  int64_t differ = 0;
  for (int64_t c = 0; c < C; ++c) {
    double sx = 0, sg = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < HW; ++i) {
        sx += xv[(n * C + c) * HW + i];
        sg += gv[(n * C + c) * HW + i];
      }
    const double expected_running = (1 - kMomentum) * 0.0 + kMomentum * (sx / static_cast<double>(N * HW));
    differ += std::memcmp(&expected_running, &running[c], sizeof(double)) != 0;
    differ += std::memcmp(&sg, &dbias[c], sizeof(double)) != 0;
  }
  CHECK(differ == 0);
}

TEST_CASE("group_norm: values and gradients do not depend on the thread count") {
  // ddpm-s's shape: 8 groups of 4 channels, rows of 4·196 elements.
  const auto run = [](int threads) {
    const int previous = num_threads();
    set_num_threads(threads);
    Tensor x = test::random_tensor({16, 32, 14, 14}, 70, -2, 2, DType::f32);
    Tensor w = test::random_tensor({32}, 71, 0.5, 1.5, DType::f32);
    Tensor b = test::random_tensor({32}, 72, -1, 1, DType::f32);
    for (Tensor* t : {&x, &w, &b}) t->set_requires_grad();
    const Tensor y = group_norm(x, 8, w, b);
    sum(mul(y, test::random_tensor({16, 32, 14, 14}, 73, -1, 1, DType::f32))).backward();
    set_num_threads(previous);
    return std::vector<std::vector<float>>{y.to_vector<float>(), x.grad().to_vector<float>(),
                                           w.grad().to_vector<float>(), b.grad().to_vector<float>()};
  };
  CHECK(run(1) == run(2));
}

TEST_CASE("group_norm: a strided view normalises as its contiguous copy, and its gradient reaches the view") {
  const Tensor base = test::random_tensor({3, 5, 6, 4}, 74, -2, 2);  // viewed as [3, 6, 5, 4]
  Tensor view_leaf = base.clone().set_requires_grad(), copy_leaf = base.transpose(1, 2).contiguous().set_requires_grad();
  const Tensor w = test::random_tensor({6}, 75, 0.5, 1.5), b = test::random_tensor({6}, 76);
  const Tensor from_view = group_norm(view_leaf.transpose(1, 2), 3, w, b), from_copy = group_norm(copy_leaf, 3, w, b);
  CHECK(from_view.to_vector<double>() == from_copy.to_vector<double>());
  const Tensor g = test::random_tensor({3, 6, 5, 4}, 77);
  sum(mul(from_view, g)).backward();
  sum(mul(from_copy, g)).backward();
  CHECK(view_leaf.grad().transpose(1, 2).contiguous().to_vector<double>() == copy_leaf.grad().to_vector<double>());
}

TEST_CASE("batch_norm: errors name the op and the shapes") {
  const Tensor x = test::random_tensor({4, 3}, 50);
  const Tensor w2 = test::random_tensor({2}, 51);
  CHECK_THROWS_WITH_AS(batch_norm(x, w2, Tensor(), Tensor(), Tensor(), true),
                       doctest::Contains("batch_norm: weight must be float64[3] on cpu for input float64[4,3] on cpu, got float64[2] on cpu"),
                       Error);
  CHECK_THROWS_WITH_AS(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), false),
                       doctest::Contains("eval mode needs running_mean and running_var"), Error);
  CHECK_THROWS_WITH_AS(batch_norm(test::random_tensor({4, 3, 2}, 52), Tensor(), Tensor(), Tensor(), Tensor(), true),
                       doctest::Contains("batch_norm: needs a floating [N,C] or [N,C,H,W] input, got float64[4,3,2]"), Error);
  CHECK_THROWS_WITH_AS(batch_norm(test::random_tensor({1, 3}, 53), Tensor(), Tensor(), Tensor(), Tensor(), true),
                       doctest::Contains("more than one value per channel"), Error);
  CHECK_THROWS_WITH_AS(batch_norm(x, Tensor(), Tensor(), Tensor::zeros({3}, DType::f64), Tensor(), true),
                       doctest::Contains("both be given"), Error);
}

TEST_CASE("dropout: the mask is the Philox uniforms thresholded at p, scaled by 1/(1-p)") {
  const uint64_t seed = 1234, stream = 7;
  for (DType dtype : {DType::f64, DType::f32}) {
    for (double p : {0.1, 0.5, 0.9}) {
      INFO(std::string(dtype_name(dtype)), " p=", p);
      const Tensor x = test::random_tensor({5, 7, 3}, 60, -1, 1, dtype);  // 105 elements: a partial Philox block
      const std::vector<double> xv = x.to(DType::f64).to_vector<double>();
      std::vector<double> expected(xv.size());
      for (size_t i = 0; i < xv.size(); ++i) {
        const bool keep = philox::uniform(seed, stream, i) >= p;
        expected[i] = dtype == DType::f64 ? (keep ? xv[i] * (1 / (1 - p)) : 0)
                                          : (keep ? double(float(xv[i]) * float(1 / (1 - p))) : 0);
      }
      test::expect_close(dropout(x, p, true, seed, stream), expected, 0, 0);
    }
  }
}

TEST_CASE("dropout: identity when p = 0 or in eval, zeros when p = 1, streams differ") {
  const Tensor x = test::random_tensor({4, 6}, 61);
  CHECK(dropout(x, 0, true, 1, 0).same(x));
  CHECK(dropout(x, 0.5, false, 1, 0).same(x));
  test::expect_close(dropout(x, 1, true, 1, 0), std::vector<double>(24, 0.0), 0, 0);
  CHECK(dropout(x, 0.5, true, 1, 0).to_vector<double>() != dropout(x, 0.5, true, 1, 1).to_vector<double>());
  CHECK(dropout(x, 0.5, true, 1, 0).to_vector<double>() == dropout(x, 0.5, true, 1, 0).to_vector<double>());
}

TEST_CASE("dropout: errors") {
  CHECK_THROWS_WITH_AS(dropout(test::random_tensor({2}, 64), 1.5, true, 0, 0),
                       doctest::Contains("dropout: p must be in [0, 1], got 1.5"), Error);
  CHECK_THROWS_WITH_AS(dropout(Tensor::zeros({2}, DType::i64), 0.5, true, 0, 0),
                       doctest::Contains("dropout: needs a floating tensor, got int64[2] on cpu"), Error);
}
