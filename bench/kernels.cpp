// lethe-bench-kernels: the W3 kernel microbenchmarks of shared/WORKLOADS.md.
//  - the GEMMs and convolutions of cnn-s at batch 128, each product on its own: forward,
//    backward-data and backward-weight (on the CPU through OpenBLAS and each of lethe's sgemm
//    kernels the CPU has, AVX2 and AVX-512; on CUDA, convolutions through cuDNN and through
//    lethe's im2col + cuBLAS; side by side);
//  - an elementwise add over 1e8 floats against a copy of the same floats, in the same run;
//  - batch_norm's training pass at resnet18c's first stage and group_norm's at ddpm-s's first block
//    (statistics, normalisation, the backward's sums and dx), against a copy of their input.
// The launchers are called directly (kernels/matmul.h, kernels/conv.h, kernels/elementwise.h), so
// allocation and autograd stay out of the timings.
//
//   lethe-bench-kernels [--device cpu|cuda|all] [--filter TEXT] [--threads N] [--repeats N]
//                       [--json FILE]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "bench/harness.h"
#include "kernels/cpu/blas.h"
#include "engine/autograd.h"
#include "engine/layout.h"
#include "engine/ops.h"
#include "kernels/cpu/parallel.h"
#include "kernels/conv.h"
#include "kernels/elementwise.h"
#include "kernels/matmul.h"
#include "kernels/norm.h"

namespace lethe::bench {
namespace {

struct Options : RunFlags {
  std::string filter;  // run only the cases whose name contains it
};

Options parse(int argc, char** argv) {
  return parse_flags<Options>("lethe-bench-kernels: the W3 kernel microbenchmarks", argc, argv,
                              [](CLI::App& app, Options& opt) {
                                app.add_option("--filter", opt.filter,
                                               "run only the cases whose name contains this text");
                              });
}

// cnn-s (shared/WORKLOADS.md) at its training batch.
constexpr int64_t kBatch = 128;
struct LinearLayer {
  const char* name;
  int64_t in, out;
};
constexpr LinearLayer kLinears[] = {{"fc1", 1568, 128}, {"fc2", 128, 10}};
struct ConvLayer {
  const char* name;
  int64_t channels, size, out_channels, kernel, pad;  // square images and kernels, stride 1
};
constexpr ConvLayer kConvs[] = {{"conv1", 1, 28, 16, 5, 2}, {"conv2", 16, 14, 32, 5, 2}};

constexpr int64_t kAddElements = 100'000'000;

std::string dims(std::initializer_list<int64_t> v) {
  std::string s;
  for (int64_t d : v) {
    if (!s.empty()) s += 'x';
    s += std::to_string(d);
  }
  return s;
}

class Runner : private DeviceRunner {
 public:
  Runner(Device device, const Options& opt, Report& report) : DeviceRunner(device, opt, report), opt_(opt) {}

  // The three GEMMs of Linear(in, out) on x [N,in], as linear's autograd runs them:
  // y = x·wᵀ, gx = gy·w and gwᵀ = xᵀ·gy.
  void linear(const LinearLayer& l) {
    const Tensor x = random({kBatch, l.in}, 1), w = random({l.out, l.in}, 2);
    const Tensor gy = random({kBatch, l.out}, 3);
    const Tensor y = empty({kBatch, l.out}), gx = empty({kBatch, l.in}), gwt = empty({l.in, l.out});
    gemm(std::string(l.name) + ".fwd", false, true, kBatch, l.out, l.in, x, l.in, w, l.in, y);
    gemm(std::string(l.name) + ".bwd_data", false, false, kBatch, l.in, l.out, gy, l.out, w, l.in, gx);
    gemm(std::string(l.name) + ".bwd_weight", true, false, l.in, l.out, kBatch, x, l.in, gy, l.out, gwt);
  }

  // Forward (with bias, as cnn-s runs it), backward-data and backward-weight of one conv layer.
  void conv(const ConvLayer& c) {
    ConvGeometry g;
    g.channels = c.channels;
    g.height = g.width = c.size;
    g.out_channels = c.out_channels;
    g.kernel_h = g.kernel_w = c.kernel;
    g.pad_h = g.pad_w = c.pad;
    g.out_h = g.out_w = conv_out_size(c.size, c.kernel, 1, c.pad, 1);
    const Shape x_shape{kBatch, c.channels, c.size, c.size};
    const Shape w_shape{c.out_channels, c.channels, c.kernel, c.kernel};
    const Shape y_shape{kBatch, c.out_channels, g.out_h, g.out_w};
    const Tensor x = random(x_shape, 4), w = random(w_shape, 5), bias = random({c.out_channels}, 6);
    const Tensor gy = random(y_shape, 7);
    const Tensor y = empty(y_shape), gx = empty(x_shape), gw = empty(w_shape);
    const double flops = 2.0 * kBatch * g.out_channels * g.out_pixels() * g.group_rows();
    std::string shape = "x";  // appended: GCC 12 warns falsely (-Wrestrict) on "x" + std::string
    shape += x_shape.str() + " w" + w_shape.str() + " p" + std::to_string(c.pad);
    const std::string name = c.name;
    conv_case(name + ".fwd", shape, flops, [&] { LETHE_DISPATCH(device_, conv2d_forward, x, w, bias, y, g); });
    conv_case(name + ".bwd_data", shape, flops,
              [&] { LETHE_DISPATCH(device_, conv2d_backward, x, w, gy, gx, Tensor(), g); });
    conv_case(name + ".bwd_weight", shape, flops,
              [&] { LETHE_DISPATCH(device_, conv2d_backward, x, w, gy, Tensor(), gw, g); });
    // The block as an evaluation pass runs it (no autograd): the three ops, and the fused op.
    Conv2dOptions same;
    same.pad_h = same.pad_w = static_cast<int>(c.pad);
    conv_case(name + ".fwd+relu+pool (three ops)", shape, flops, [&] {
      NoGradGuard no_grad;
      max_pool2d(relu(conv2d(x, w, bias, same)), Pool2dOptions{});
    });
    conv_case(name + ".fwd+relu+pool (fused)", shape, flops, [&] {
      NoGradGuard no_grad;
      conv2d_relu_max_pool2(x, w, bias, same);
    });
    // The block as a training step runs it: the forward with autograd, then the gradients of w, the
    // bias and (conv2's input is a hidden layer's output) x, for a given gradient of the pooled output.
    Tensor xl = x.detach(), wl = w.detach(), bl = bias.detach();
    std::vector<Tensor> leaves{wl.set_requires_grad(), bl.set_requires_grad()};
    if (c.channels > 1) leaves.push_back(xl.set_requires_grad());
    const Tensor pooled_gy = random({kBatch, c.out_channels, g.out_h / 2, g.out_w / 2}, 8);
    const double train_flops = static_cast<double>(leaves.size()) * flops;  // fwd, bwd_weight (and bwd_data)
    conv_case(name + ".fwd+bwd relu+pool (three ops)", shape, train_flops, [&] {
      autograd::grad(sum(mul(max_pool2d(relu(conv2d(xl, wl, bl, same)), Pool2dOptions{}), pooled_gy)), leaves);
    });
    conv_case(name + ".fwd+bwd relu+pool (fused)", shape, train_flops, [&] {
      autograd::grad(sum(mul(conv2d_relu_max_pool2(xl, wl, bl, same), pooled_gy)), leaves);
    });
  }

  // One training pass of batch_norm (W2's resnet18c, first stage) and of group_norm (ddpm-s, its
  // first block), their four launchers each: the statistics, y, the backward's sums, dx. Nine
  // passes over x's bytes at the least (x twice for the mean and the variance, x read and y written,
  // dy and x for the sums, dy and x read and dx written), against a copy of x.
  void norm() {
    if (!selected("norm")) return;
    const int repeats = repeats_or(device_.is_cuda() ? 50 : 10);
    {
      const Shape shape{kBatch, 64, 32, 32};
      const ChannelShape s{kBatch, 64, 32 * 32};
      const Tensor x = random(shape, 10), gy = random(shape, 11), y = empty(shape), gx = empty(shape);
      const Tensor w = random({64}, 12), b = random({64}, 13);
      const Tensor mean = Tensor::empty({64}, DType::f64, device_), invstd = Tensor::empty({64}, DType::f64, device_);
      const Tensor sum_dy = Tensor::empty({64}, DType::f64, device_), sum_dy_xhat = Tensor::empty({64}, DType::f64, device_);
      const BatchNormParams p{};
      report_.begin_case();
      measure_copy("batch_norm.fwd+bwd", dims({kBatch, 64, 32, 32}), x, y, 2, repeats);
      measure({"batch_norm.fwd+bwd", "lethe", device_.str(), dims({kBatch, 64, 32, 32}), {}, 9.0 * x.nbytes(), "GB/s"},
              2, repeats, [&] {
                LETHE_DISPATCH(device_, batch_norm_stats, x, s, p, Tensor(), Tensor(), mean, invstd);
                LETHE_DISPATCH(device_, batch_norm_forward, x, s, mean, invstd, w, b, y);
                LETHE_DISPATCH(device_, batch_norm_backward_reduce, gy, x, s, mean, invstd, sum_dy, sum_dy_xhat);
                LETHE_DISPATCH(device_, batch_norm_backward, gy, x, s, mean, invstd, w, sum_dy, sum_dy_xhat, true, gx);
              });
    }
    {
      const int64_t batch = 64;
      const Shape shape{batch, 32, 28, 28};
      const GroupShape s{batch, 8, 4, 28 * 28};
      const Tensor x = random(shape, 14), gy = random(shape, 15), y = empty(shape), gx = empty(shape);
      const Tensor w = random({32}, 16), b = random({32}, 17);
      const auto f64 = [&](const Shape& sh) { return Tensor::empty(sh, DType::f64, device_); };
      const Tensor mean = f64({s.rows()}), invstd = f64({s.rows()}), sum_dy = f64({batch, 32}),
                   sum_dy_xhat = f64({batch, 32});
      // The rows' sums dx reads: the op forms them from sum_dy and sum_dy_xhat with a few small ops,
      // left out here (their values do not change dx's cost).
      const Tensor sum_d = Tensor::zeros({s.rows()}, DType::f64, device_), sum_d_xhat = sum_d.clone();
      report_.begin_case();
      measure_copy("group_norm.fwd+bwd", dims({batch, 32, 28, 28}), x, y, 2, repeats);
      measure({"group_norm.fwd+bwd", "lethe", device_.str(), dims({batch, 32, 28, 28}), {}, 9.0 * x.nbytes(), "GB/s"},
              2, repeats, [&] {
                LETHE_DISPATCH(device_, group_norm_stats, x, s, 1e-5, mean, invstd);
                LETHE_DISPATCH(device_, group_norm_forward, x, s, mean, invstd, w, b, y);
                LETHE_DISPATCH(device_, group_norm_backward_reduce, gy, x, s, mean, invstd, sum_dy, sum_dy_xhat);
                LETHE_DISPATCH(device_, group_norm_backward, gy, x, s, mean, invstd, w, sum_d, sum_d_xhat, gx);
              });
    }
  }

  // c = a + b over 1e8 floats (12 bytes moved per element) against a copy of a into c (8 bytes
  // per element): the copy is the bandwidth the add could reach.
  void add() {
    if (!selected("add")) return;
    const Tensor a = random({kAddElements}, 8), b = random({kAddElements}, 9), c = empty({kAddElements});
    const size_t bytes = a.nbytes();
    const Layout layout = layout_of(a);
    const int repeats = repeats_or(device_.is_cuda() ? 50 : 10);
    report_.begin_case();
    measure_copy("copy", "1e8 f32", a, c, 2, repeats);
    measure({"add", "lethe", device_.str(), "1e8 f32", {}, 3.0 * bytes, "GB/s"}, 2, repeats,
            [&] { LETHE_DISPATCH(device_, binary, BinaryOp::add, a, layout, b, layout, c); });
  }

 private:
  bool selected(const std::string& name) const {
    return opt_.filter.empty() || name.find(opt_.filter) != std::string::npos;
  }
  // Never zeros: those can run faster than real data and hide unwritten outputs.
  Tensor random(const Shape& shape, uint64_t stream) const {
    return Tensor::randn(shape, /*seed=*/42, stream, DType::f32, device_);
  }
  Tensor empty(const Shape& shape) const { return Tensor::empty(shape, DType::f32, device_); }

  // Row-major C [m,n] = op(A)·op(B), 2·m·n·k FLOPs.
  void gemm(const std::string& name, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
            const Tensor& a, int64_t lda, const Tensor& b, int64_t ldb, const Tensor& c) {
    if (!selected(name)) return;
    report_.begin_case();
    const auto fn = [&] {
      LETHE_DISPATCH(device_, gemm_batched, trans_a, trans_b, 1, m, n, k, a, lda, 0, b, ldb, 0, c, n, 0, 0.0);
    };
    const int repeats = repeats_or(device_.is_cuda() ? 200 : 50);
    const Row row{name, "", device_.str(), dims({m, n, k}), {}, 2.0 * m * n * k, "GFLOP/s"};
    if (device_.is_cuda()) {
      measure(with_impl(row, "cublas"), repeats, fn);
      return;
    }
    for_each_sgemm([&](const std::string& impl) { measure(with_impl(row, impl), repeats, fn); });
  }

  static Row with_impl(Row row, std::string impl) {
    row.impl = std::move(impl);
    return row;
  }

  // On the CPU, float32 GEMMs through OpenBLAS (the reference row), then each of lethe's own kernels
  // this CPU has (AVX2, AVX-512); the choice in force before is restored.
  template <class F>
  static void for_each_sgemm(const F& body) {
    const blas::SgemmKernel previous = blas::sgemm_kernel();
    for (const blas::SgemmKernel kernel : {blas::SgemmKernel::openblas, blas::SgemmKernel::avx2, blas::SgemmKernel::avx512}) {
      if (!blas::cpu_has(kernel)) continue;
      blas::use_sgemm_kernel(kernel);
      body(kernel == blas::SgemmKernel::openblas ? std::string("openblas")
                                                 : std::string("lethe-") + blas::sgemm_kernel_name(kernel));
    }
    blas::use_sgemm_kernel(previous);
  }

  // A conv product: on CUDA through each backend (cuDNN first, the reference), on the CPU through
  // im2col and each float32 GEMM.
  void conv_case(const std::string& name, const std::string& shape, double flops,
                 const std::function<void()>& fn) {
    if (!selected(name)) return;
    report_.begin_case();
    const int repeats = repeats_or(device_.is_cuda() ? 200 : 30);
    if (!device_.is_cuda()) {
      // With OpenBLAS the CPU lowers by im2col; with lethe's sgemm, by implicit GEMMs where it can.
      for_each_sgemm([&](const std::string& impl) {
        const std::string label = impl == "openblas" ? "im2col+openblas" : impl;
        measure({name, label, device_.str(), shape, {}, flops, "GFLOP/s"}, repeats, fn);
      });
      return;
    }
    const ConvBackend previous = conv_backend();
    for (const auto& [backend, impl] : {std::pair{ConvBackend::cudnn, "cudnn"}, std::pair{ConvBackend::im2col, "im2col+cublas"}}) {
      set_conv_backend(backend);
      measure({name, impl, device_.str(), shape, {}, flops, "GFLOP/s"}, repeats, fn);
    }
    set_conv_backend(previous);
  }

  const Options& opt_;
};

int run(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  set_num_threads(opt.threads);
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  nlohmann::json context = {{"threads", opt.threads}, {"blas_core", blas::core_name()}, {"sgemm", blas::sgemm_name()}};
  std::printf("lethe-bench-kernels: %d threads; OpenBLAS core %s (OPENBLAS_CORETYPE=%s); %s\n", opt.threads,
              blas::core_name().c_str(), coretype ? coretype : "unset", device_name(Device::cpu()).c_str());
  Report report("lethe-bench-kernels");
  const char* note = "\nGEMM shapes are MxNxK; rates use the median; ratio = rate / the case's first row's rate "
                     "(measured in the same run).\n\n";
  return report.measure_devices(opt, std::move(context), note, [&](Device device) {
    Runner runner(device, opt, report);
    for (const LinearLayer& l : kLinears) runner.linear(l);
    for (const ConvLayer& c : kConvs) runner.conv(c);
    runner.add();
    runner.norm();
  });
}

}  // namespace
}  // namespace lethe::bench

int main(int argc, char** argv) { return lethe::bench::run_main("lethe-bench-kernels", lethe::bench::run, argc, argv); }
