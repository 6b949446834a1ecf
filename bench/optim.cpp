// lethe-bench-optim: the W3 optimizer-update microbenchmark of shared/WORKLOADS.md. One step of
// SGD (momentum 0.9, coupled weight decay 5e-4) and of AdamW over a flat arena of 1e6 and 1e7
// float32 parameters (and 1e8 with --large, always on CUDA):
//  - "fused": the optimizer's step(), one pass over θ, g and the state (nn/optim.h);
//  - "separate ops": the same step as one elementwise launcher call per op (what the step costs
//    without fusion: SGD 6 passes, AdamW 14);
//  - a copy of θ as the ceiling: std::memcpy over the same threads on the CPU,
//    cudaMemcpyAsync device to device on CUDA.
// Rates are the bytes the step must move (SGD: read θ, g, v, write θ, v = 20 B/param; AdamW:
// read θ, g, m, v, write θ, m, v = 28 B/param) over the median time, for both step rows, so the
// ratio to the copy says how close each comes to the memory-bandwidth ceiling.
//
//   lethe-bench-optim [--device cpu|cuda|all] [--threads N] [--repeats N] [--large] [--json FILE]
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "bench/harness.h"
#include "engine/arena.h"
#include "engine/layout.h"
#include "kernels/elementwise.h"
#include "nn/optim.h"

namespace lethe::bench {
namespace {

struct Options : RunFlags {
  bool large = false;
};

Options parse(int argc, char** argv) {
  return parse_flags<Options>("lethe-bench-optim: the W3 optimizer-update microbenchmark", argc, argv,
                              [](CLI::App& app, Options& opt) {
                                app.add_flag("--large", opt.large, "also 1e8 parameters on the CPU (always on CUDA)");
                              });
}

// Hyperparameters of the steps (their values do not change the memory traffic).
constexpr double kLr = 0.01, kMomentum = 0.9, kDecay = 5e-4;
constexpr double kBeta1 = 0.9, kBeta2 = 0.999, kEps = 1e-8, kAdamDecay = 1e-2;

// One arena of n float32 parameters with random gradients, the optimizers under test, and the
// buffers of the separate-ops version.
class Runner : private PassRunner {
 public:
  Runner(Device device, int64_t n, const Options& opt, Report& report) : PassRunner(device, n, opt, report) {
    Tensor theta = Tensor::randn({n}, /*seed=*/42, 0, DType::f32, device);
    arena_ = ParamArena({theta.set_requires_grad()});
    Tensor(arena_.grad(0)).copy_(Tensor::randn({n}, 42, 1, DType::f32, device));
    m_ = Tensor::zeros({n}, DType::f32, device);
    v_ = Tensor::zeros({n}, DType::f32, device);
    tmp_ = Tensor::empty({n}, DType::f32, device);
    layout_ = layout_of(tmp_);
  }

  void sgd() {
    nn::SgdOptions o;
    o.lr = kLr;
    o.momentum = kMomentum;
    o.weight_decay = kDecay;
    const auto fused = nn::make_sgd(arena_, o);
    const Tensor &theta = arena_.data(), &g = arena_.grad(0);
    step_case("sgd", 20, [&] { fused->step(); }, [&] {
      unary(UnaryOp::mul_scalar, theta, tmp_, kDecay);  // λθ
      binary(BinaryOp::add, g, tmp_, tmp_);             // g' = g + λθ
      unary(UnaryOp::mul_scalar, v_, v_, kMomentum);    // μv
      binary(BinaryOp::add, v_, tmp_, v_);              // v = μv + g'
      unary(UnaryOp::mul_scalar, v_, tmp_, kLr);        // lr·v
      binary(BinaryOp::sub, theta, tmp_, theta);        // θ −= lr·v
    });
  }

  void adamw() {
    const auto fused = nn::make_adamw(arena_, {kLr, kBeta1, kBeta2, kEps, kAdamDecay});
    const Tensor &theta = arena_.data(), &g = arena_.grad(0);
    // Bias corrections of step 10; a real loop computes them on the host each step.
    const double step_size = kLr / (1 - std::pow(kBeta1, 10)), bias2_sqrt = std::sqrt(1 - std::pow(kBeta2, 10));
    step_case("adamw", 28, [&] { fused->step(); }, [&] {
      unary(UnaryOp::mul_scalar, theta, theta, 1 - kLr * kAdamDecay);  // θ(1 − lr·λ)
      binary(BinaryOp::sub, g, m_, tmp_);                                // m += (1 − β1)(g − m)
      unary(UnaryOp::mul_scalar, tmp_, tmp_, 1 - kBeta1);
      binary(BinaryOp::add, m_, tmp_, m_);
      unary(UnaryOp::mul_scalar, v_, v_, kBeta2);                        // v = β2·v + (1 − β2)·g²
      binary(BinaryOp::mul, g, g, tmp_);
      unary(UnaryOp::mul_scalar, tmp_, tmp_, 1 - kBeta2);
      binary(BinaryOp::add, v_, tmp_, v_);
      unary(UnaryOp::sqrt, v_, tmp_);                                    // √v / √bc2 + ε
      unary(UnaryOp::div_scalar, tmp_, tmp_, bias2_sqrt);
      unary(UnaryOp::add_scalar, tmp_, tmp_, kEps);
      binary(BinaryOp::div, m_, tmp_, tmp_);                             // θ −= step_size · m / denom
      unary(UnaryOp::mul_scalar, tmp_, tmp_, step_size);
      binary(BinaryOp::sub, theta, tmp_, theta);
    });
  }

 private:
  void unary(UnaryOp op, const Tensor& x, const Tensor& y, double a = 0) {
    LETHE_DISPATCH(device_, unary, op, x, y, UnaryParams{a, 0});
  }
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
    LETHE_DISPATCH(device_, binary, op, a, layout_, b, layout_, out);
  }

  // The copy (reference), the fused step and the separate ops, as one case.
  void step_case(const std::string& name, double bytes_per_param, const std::function<void()>& fused,
                 const std::function<void()>& separate) {
    begin_pass_case(name, arena_.data(), tmp_);
    const double work = bytes_per_param * static_cast<double>(n_);
    measure_pass("fused", work, fused);
    measure_pass("separate ops", work, separate);
  }

  ParamArena arena_;
  Tensor m_, v_, tmp_;  // the separate-ops version's state and temporary
  Layout layout_;
};

int run(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  const char* note =
      "\nGB/s: bytes the step must move (SGD 20 B/param, AdamW 28 B/param; the copy 8 B/param) over the median "
      "time; ratio = rate / the copy's rate, measured in the same run. The separate ops actually move 60 (SGD) "
      "and 136 (AdamW) B/param. On the CPU the copy also reads its destination before writing it "
      "(write-allocate) and 1e6 floats stay in cache, so an in-place step can beat the copy's rate.\n\n";
  return run_passes("lethe-bench-optim", opt, note, [&](Device device, Report& report) {
    std::vector<int64_t> sizes = {1'000'000, 10'000'000};
    if (opt.large || device.is_cuda()) sizes.push_back(100'000'000);
    for (const int64_t n : sizes) {
      Runner runner(device, n, opt, report);
      runner.sgd();
      runner.adamw();
    }
  });
}

}  // namespace
}  // namespace lethe::bench

int main(int argc, char** argv) { return lethe::bench::run_main("lethe-bench-optim", lethe::bench::run, argc, argv); }
