// conv2d beyond the op registry's table (tests/op_cases_conv.cpp has its forward against float64
// loops, gradchecks and CPU/CUDA parity): float32 gradients against the float64 op, batching and
// bitwise reproducibility on every float32 GEMM path (lethe's AVX-512 and AVX2 kernels, with their
// implicit GEMMs at the shapes that switch them on, and OpenBLAS), and the errors; the fused
// conv2d_relu_max_pool2 bit for bit against the three ops it replaces.
#include "kernels/conv.h"

#include <cmath>
#include <string>

#include "kernels/cpu/blas.h"
#include "harness.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/parallel.h"

using namespace lethe;
using test::conv_options;

namespace {

struct Case {
  const char* name;
  Conv2dOptions o;
};
// Each option on its own and all of them together.
const Case kCases[] = {{"plain", conv_options(1, 0, 1, 1)},   {"stride 2", conv_options(2, 0, 1, 1)},
                       {"padding 1", conv_options(1, 1, 1, 1)}, {"dilation 2", conv_options(1, 0, 2, 1)},
                       {"groups 2", conv_options(1, 0, 1, 2)},  {"all", conv_options(2, 1, 2, 2)}};

Tensor input(const Shape& shape, uint64_t seed, DType dt = DType::f64) {
  return test::random_tensor(shape, seed, -1, 1, dt).set_requires_grad();
}

// Output and gradients of float32 x, w, b (each requiring grad) under o, against the float64 op
// (gradchecked in tests/op_cases_conv.cpp) on the same values, with the same output weighting; each within
// tolerance·(1 + |expected|).
void check_float32_against_float64(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& o,
                                   double forward_tol, double gradient_tol) {
  const Tensor y = conv2d(x, w, b, o);
  const Tensor gy = test::random_tensor(y.shape(), 54, -1, 1, DType::f32);
  const std::vector<Tensor> g = autograd::grad(sum(mul(y, gy)), {x, w, b});
  const Tensor x64 = x.detach().to(DType::f64).set_requires_grad(), w64 = w.detach().to(DType::f64).set_requires_grad();
  const Tensor b64 = b.detach().to(DType::f64).set_requires_grad();
  const Tensor y64 = conv2d(x64, w64, b64, o);
  const std::vector<Tensor> g64 = autograd::grad(sum(mul(y64, gy.to(DType::f64))), {x64, w64, b64});
  INFO("forward");
  test::expect_close(y, y64, forward_tol, forward_tol);
  for (size_t i = 0; i < g.size(); ++i) {
    INFO("gradient of input ", i);
    test::expect_close(g[i], g64[i], gradient_tol, gradient_tol);
  }
}

// The geometry fields that decide the CPU's implicit GEMMs.
ConvGeometry geometry(const Tensor& x, const Tensor& w, const Conv2dOptions& o) {
  ConvGeometry g;
  g.channels = x.size(1), g.out_channels = w.size(0), g.kernel_h = w.size(2), g.kernel_w = w.size(3);
  g.stride_h = o.stride_h, g.stride_w = o.stride_w, g.pad_h = o.pad_h, g.pad_w = o.pad_w;
  g.dilation_h = o.dilation_h, g.dilation_w = o.dilation_w, g.groups = o.groups;
  return g;
}

}  // namespace

TEST_CASE("conv2d: float32 gradients of every option against float64 ones") {
  // The float32 kernels (with lethe's sgemm, the implicit GEMMs for unit stride and dilation)
  // against the float64 path that gradcheck verified.
  test::for_each_sgemm_path([] {
    for (const Case& c : kCases) {
      INFO(std::string(c.name));
      check_float32_against_float64(input({3, 4, 9, 9}, 51, DType::f32), input({6, 4 / c.o.groups, 3, 3}, 52, DType::f32),
                                    input({6}, 53, DType::f32), c.o, 1e-5, 1e-4);
    }
  });
}

TEST_CASE("conv2d: float32 implicit GEMMs at cnn-s's second layer and grouped, on every GEMM path, against float64") {
  // The shapes that switch the implicit GEMMs on where lethe's sgemm runs (kernels/cpu/conv.cpp),
  // on every kernel alike: unit stride, >= 32 output channels per group (weight gradient), >= 8
  // input channels per group with padding <= k - 1 (input gradient). cnn-s's conv2 (16 -> 32, 5x5,
  // padding 2, on 14x14), 2 groups of 8 -> 32 channels, and 8 -> 16 channels, whose weight gradient
  // stays explicit even on AVX2, whose register block is 16 columns wide.
  struct Layer {
    const char* name;
    int64_t in, out;
    int groups;
  };
  for (const Layer& l : {Layer{"cnn-s conv2", 16, 32, 1}, Layer{"2 groups", 16, 64, 2}, Layer{"16 channels", 8, 16, 1}}) {
    INFO(std::string(l.name));
    const Conv2dOptions o = conv_options(1, 2, 1, l.groups);
    const Tensor x = input({3, l.in, 14, 14}, 61, DType::f32), w = input({l.out, l.in / l.groups, 5, 5}, 62, DType::f32);
    const Tensor b = input({l.out}, 63, DType::f32);
    test::for_each_sgemm_path([&] {
      const cpu::ImplicitGemmSteps steps = cpu::implicit_gemm_steps(geometry(x, w, o));
      const bool lethe = blas::uses_lethe_sgemm();
      CHECK(steps.forward == lethe);
      CHECK(steps.weight_grad == (lethe && l.out / l.groups >= 32));
      CHECK(steps.input_grad == lethe);
      check_float32_against_float64(x, w, b, o, 1e-5, 1e-4);
    });
  }
}

TEST_CASE("conv2d: a batch equals image-by-image convolution (cnn-s's second layer, float32)") {
  // C=16, k=5 on 14x14, 110 images over the threads. (Not bitwise: GEMMs of other widths may
  // block differently.)
  test::for_each_sgemm_path([] {
    const Tensor x = input({110, 16, 14, 14}, 21, DType::f32), w = input({8, 16, 5, 5}, 22, DType::f32), b = input({8}, 23, DType::f32);
    const Conv2dOptions o = conv_options(1, 2, 1, 1);
    const Tensor y = conv2d(x, w, b, o);
    const Tensor gy = test::random_tensor(y.shape(), 24, -1, 1, DType::f32);
    const std::vector<Tensor> g = autograd::grad(sum(mul(y, gy)), {x, w, b});
    Tensor gw_sum = Tensor::zeros(w.shape());
    for (int64_t n : {0, 57, 109}) {
      const Tensor xn = x.detach().narrow(0, n, 1).set_requires_grad();
      const Tensor yn = conv2d(xn, w, b, o);
      test::expect_close(yn, y.narrow(0, n, 1), 1e-5, 1e-5);
      const Tensor gxn = autograd::grad(sum(mul(yn, gy.narrow(0, n, 1))), {xn})[0];
      test::expect_close(g[0].narrow(0, n, 1), gxn, 1e-5, 1e-5);
    }
    // The weight gradient, against float64 image-by-image sums.
    const Tensor x64 = x.detach().to(DType::f64), w64 = w.detach().to(DType::f64).set_requires_grad();
    const Tensor gw64 = autograd::grad(sum(mul(conv2d(x64, w64, Tensor(), o), gy.to(DType::f64))), {w64})[0];
    test::expect_close(g[1], gw64, 1e-4, 1e-3);
    test::expect_close(g[2], sum(gy.to(DType::f64), {0, 2, 3}), 1e-5, 1e-4);
  });
}

TEST_CASE("conv2d: results are bitwise reproducible") {
  const Tensor x = input({4, 3, 9, 9}, 31, DType::f32), w = input({6, 3, 3, 3}, 32, DType::f32), b = input({6}, 33, DType::f32);
  auto run = [&] {
    const Tensor y = conv2d(x, w, b, conv_options(2, 1, 1, 1));
    std::vector<Tensor> g = autograd::grad(sum(mul(y, y)), {x, w, b});
    g.push_back(y);
    return g;
  };
  test::for_each_sgemm_path([&] {
    const std::vector<Tensor> r1 = run(), r2 = run();
    for (size_t i = 0; i < r1.size(); ++i) test::expect_close(r1[i], r2[i], 0, 0);
  });
}

TEST_CASE("conv2d: lethe's AVX2 and AVX-512 kernels give the same bits (cnn-s's layers, float32)") {
  // Both kernels compute every product alike and conv2d picks its implicit GEMMs by one rule for
  // both (kernels/cpu/conv.cpp), so a model trains to the same bits on either kind of CPU.
  if (!blas::cpu_has(blas::SgemmKernel::avx512) || !blas::cpu_has(blas::SgemmKernel::avx2)) {
    test::record_skip("comparing lethe's AVX2 and AVX-512 sgemm needs a CPU with AVX512F, AVX2 and FMA");
    return;
  }
  struct Layer {
    int64_t in, out;
  };
  for (const Layer& l : {Layer{1, 16}, Layer{16, 32}}) {
    CAPTURE(l.in);
    const Tensor x = input({5, l.in, 14, 14}, 71, DType::f32), w = input({l.out, l.in, 5, 5}, 72, DType::f32);
    const Tensor b = input({l.out}, 73, DType::f32);
    auto run = [&](blas::SgemmKernel kernel) {
      blas::use_sgemm_kernel(kernel);
      const Tensor y = conv2d(x, w, b, conv_options(1, 2, 1, 1));
      std::vector<Tensor> g = autograd::grad(sum(mul(y, y)), {x, w, b});
      g.push_back(y);
      return g;
    };
    const blas::SgemmKernel before = blas::sgemm_kernel();
    const std::vector<Tensor> avx2 = run(blas::SgemmKernel::avx2), avx512 = run(blas::SgemmKernel::avx512);
    blas::use_sgemm_kernel(before);
    for (size_t i = 0; i < avx2.size(); ++i) test::expect_close(avx2[i], avx512[i], 0, 0);
  }
}

TEST_CASE("conv2d: errors name the op, the shapes and the reason") {
  const Tensor x = Tensor::zeros({2, 4, 6, 6});
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({4, 4, 3, 3}), Tensor(), conv_options(1, 0, 1, 3)),
                       doctest::Contains("conv2d: input channels (4) and output channels (4) must be divisible by groups (3)"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({4, 3, 3, 3})),
                       doctest::Contains("conv2d: w float32[4,3,3,3] on cpu expects 3 input channels per group, x float32[2,4,6,6] on cpu has 4"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({4, 4, 7, 7})),
                       doctest::Contains("conv2d: kernel [7,7] with dilation [1,1] does not fit input [6,6] with padding [0,0]"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({4, 4, 3, 3}), Tensor(), conv_options(1, 0, 3, 1)),
                       doctest::Contains("does not fit input [6,6]"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({4, 4, 3, 3}, DType::f64)),
                       doctest::Contains("conv2d: needs float32 or float64 x and w of one dtype"), Error);
  CHECK_THROWS_WITH_AS(conv2d(Tensor::zeros({4, 6, 6}), Tensor::zeros({4, 4, 3, 3})),
                       "conv2d: expects x [N,C,H,W], got float32[4,6,6] on cpu", Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({4, 4, 3, 3}), Tensor::zeros({3})),
                       doctest::Contains("conv2d: bias float32[3] on cpu does not match w"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({4, 4, 3, 3}), Tensor(), conv_options(0, 0, 1, 1)),
                       doctest::Contains("conv2d: invalid options stride [0,0]"), Error);
  if (cuda_available())
    CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({4, 4, 3, 3}, DType::f32, Device::cuda(0))),
                         doctest::Contains("conv2d: devices differ"), Error);
}

TEST_CASE("conv2d_relu_max_pool2: the bits of conv2d, relu and max_pool2d, forward and backward, on every GEMM path and thread count") {
  // The implicit GEMMs (cnn-s's layers, no bias, an odd output whose last row and column the pool
  // drops) and the explicit ones (stride 2, groups, float64); NaN, −0, a huge value and a column
  // of zeros in the input, −0 and 0 in the output's gradient: the fused passes must follow the
  // three ops' rules (ReLU sends NaN to 0, the pool's scan order and argmax, 0 + g).
  struct Layer {
    const char* name;
    Shape x, w;
    Conv2dOptions o;
    bool bias;
  };
  const Layer layers[] = {{"cnn-s conv1", {5, 1, 28, 28}, {16, 1, 5, 5}, conv_options(1, 2, 1, 1), true},
                          {"cnn-s conv2", {3, 16, 14, 14}, {32, 16, 5, 5}, conv_options(1, 2, 1, 1), true},
                          {"no bias, odd output", {3, 3, 9, 9}, {8, 3, 3, 3}, conv_options(1, 1, 1, 1), false},
                          {"stride 2, groups 2", {2, 4, 11, 11}, {6, 2, 3, 3}, conv_options(2, 1, 1, 2), true}};
  const int threads_before = num_threads();
  test::for_each_sgemm_path([&] {
    for (const Layer& l : layers) {
      for (DType dt : {DType::f32, DType::f64}) {
        const std::string layer = l.name;
        CAPTURE(layer);
        CAPTURE(dtype_name(dt));
        std::vector<double> values = test::random_tensor(l.x, 81).to_vector<double>();
        values[7] = std::nan(""), values[30] = -0.0, values[31] = 0.0, values[values.size() - 1] = 1e30;
        for (int64_t h = 0; h < l.x[2]; ++h) values[static_cast<size_t>(h * l.x[3] + 3)] = 0;
        const Tensor x = Tensor::from_vector(values, l.x).to(dt).set_requires_grad();
        const Tensor w = test::random_tensor(l.w, 82, -1, 1, dt).set_requires_grad();
        const Tensor b = l.bias ? test::random_tensor({l.w[0]}, 83, -1, 1, dt).set_requires_grad() : Tensor();
        std::vector<Tensor> inputs{x, w};
        if (l.bias) inputs.push_back(b);
        for (int threads : {1, 2}) {
          CAPTURE(threads);
          set_num_threads(threads);
          const Tensor expected = max_pool2d(relu(conv2d(x, w, b, l.o)), Pool2dOptions{});
          const Tensor fused = conv2d_relu_max_pool2(x, w, b, l.o);
          REQUIRE(test::bitwise_equal(fused, expected));
          std::vector<double> weights = test::random_tensor(expected.shape(), 84).to_vector<double>();
          weights[0] = -0.0, weights[1] = 0.0;
          const Tensor gy = Tensor::from_vector(weights, expected.shape()).to(dt);
          const std::vector<Tensor> want = autograd::grad(sum(mul(expected, gy)), inputs);
          const std::vector<Tensor> got = autograd::grad(sum(mul(fused, gy)), inputs);
          for (size_t i = 0; i < want.size(); ++i) {
            CAPTURE(i);
            CHECK(test::bitwise_equal(got[i], want[i]));
          }
          NoGradGuard no_grad;  // without autograd (no argmax kept): the same values
          CHECK(test::bitwise_equal(conv2d_relu_max_pool2(x, w, b, l.o), expected));
        }
      }
    }
  });
  set_num_threads(threads_before);
}

TEST_CASE("conv2d_relu_max_pool2: an empty batch, and gradients for some inputs only, as the three ops give them") {
  // The fused backward builds each image's gradient in cache and sums its planes for the bias
  // there: with no images, and with only the bias (or only x) requiring its gradient, it must still
  // give the three ops' gradients, bit for bit.
  const Conv2dOptions same = conv_options(1, 2, 1, 1);
  for (const int64_t images : {int64_t{0}, int64_t{3}}) {
    CAPTURE(images);
    const Tensor x = test::random_tensor({images, 16, 14, 14}, 91, -1, 1, DType::f32);
    const Tensor w = test::random_tensor({32, 16, 5, 5}, 92, -1, 1, DType::f32);
    const Tensor b = test::random_tensor({32}, 93, -1, 1, DType::f32);
    for (const int which : {0, 1, 2}) {  // the one input that requires its gradient
      CAPTURE(which);
      std::vector<Tensor> leaves{x.detach(), w.detach(), b.detach()};
      leaves[static_cast<size_t>(which)].set_requires_grad();
      const Tensor expected = max_pool2d(relu(conv2d(leaves[0], leaves[1], leaves[2], same)), Pool2dOptions{});
      const Tensor fused = conv2d_relu_max_pool2(leaves[0], leaves[1], leaves[2], same);
      REQUIRE(test::bitwise_equal(fused, expected));
      const Tensor gy = test::random_tensor(expected.shape(), 94, -1, 1, DType::f32);
      const Tensor want = autograd::grad(sum(mul(expected, gy)), {leaves[static_cast<size_t>(which)]})[0];
      const Tensor got = autograd::grad(sum(mul(fused, gy)), {leaves[static_cast<size_t>(which)]})[0];
      CHECK(test::bitwise_equal(got, want));
    }
  }
}

TEST_CASE("conv2d_relu_max_pool2: errors name the op, the shapes and the reason") {
  const Tensor x = Tensor::zeros({2, 4, 6, 6});
  CHECK_THROWS_WITH_AS(conv2d_relu_max_pool2(x, Tensor::zeros({4, 4, 6, 6})),
                       "conv2d_relu_max_pool2: the convolution's output [1,1] is smaller than the 2x2 pooling "
                       "window (x float32[2,4,6,6] on cpu, w float32[4,4,6,6] on cpu)",
                       Error);
  CHECK_THROWS_WITH_AS(conv2d_relu_max_pool2(x, Tensor::zeros({4, 3, 3, 3})),
                       doctest::Contains("conv2d: w float32[4,3,3,3] on cpu expects 3 input channels per group"), Error);
  CHECK(conv2d_relu_max_pool2(x, Tensor::zeros({4, 4, 3, 3})).shape() == Shape{2, 4, 2, 2});
}
