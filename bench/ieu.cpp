// lethe-bench-ieu: the W3 IEU-update microbenchmark of shared/WORKLOADS.md. One IEU step over a
// flat arena of 1e6, 1e7 and 1e8 float32 parameters (--sizes to choose), with a forget gradient,
// noise (σ > 0) and the bounded-ascent gate on (the forget loss below the cap), no momentum:
//  - "fused": IeuUpdate::step, one pass over θ, g_r and g_f (unlearn/ieu_update.h);
//  - "fused, no noise": the same with σ = 0, what the step costs without drawing normals;
//  - "separate ops": ieu_update_reference, one elementwise launcher call per op and a randn
//    noise tensor (what the step costs without fusion);
//  - on the CPU, the noise alone: a normal per parameter by philox::normal4 one block at a time,
//    and by each vector path of cpu::normal_blocks this CPU has (AVX-512, AVX2; the same bits),
//    the best of which the step uses;
//  - a copy of θ as the ceiling: std::memcpy over the same threads on the CPU,
//    cudaMemcpyAsync device to device on CUDA.
// Rates are the bytes the step must move (read θ, g_r, g_f, write θ = 16 B/param) over the
// median time, for every step row, so the ratio to the copy says how close each comes to the
// memory-bandwidth ceiling. 1e8 parameters need about 2.4 GB (θ, two gradients, the copy's
// destination and the separate ops' two temporaries).
//
//   lethe-bench-ieu [--device cpu|cuda|all] [--threads N] [--repeats N] [--sizes N,...] [--json FILE]
#include <functional>
#include <string>
#include <vector>

#include "bench/harness.h"
#include "engine/arena.h"
#include "engine/ops/updates.h"
#include "kernels/common/philox.h"
#include "kernels/cpu/normal_blocks.h"
#include "kernels/cpu/parallel.h"
#include "unlearn/ieu_update.h"

namespace lethe::bench {
namespace {

struct Options : RunFlags {
  std::vector<int64_t> sizes = {1'000'000, 10'000'000, 100'000'000};
};

Options parse(int argc, char** argv) {
  return parse_flags<Options>("lethe-bench-ieu: the W3 IEU-update microbenchmark", argc, argv,
                              [](CLI::App& app, Options& opt) {
                                app.add_option("--sizes", opt.sizes, "parameter counts (default 1e6 1e7 1e8)")
                                    ->delimiter(',')
                                    ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
                              });
}

// Hyperparameters of the step (their values do not change the memory traffic). The forget loss
// sits below the cap, so the gate stays open and g_f is ascended.
constexpr double kLr = 0.01, kAlpha = 0.5, kDecay = 5e-4, kSigma = 1e-3;
constexpr double kForgetLoss = 1.0, kCap = 2.0;
constexpr uint64_t kSeed = 42;
constexpr double kBytesPerParam = 16;

// One arena of n float32 parameters with random retain and forget gradients, and the steps
// under test.
class Runner : private PassRunner {
 public:
  Runner(Device device, int64_t n, const Options& opt, Report& report) : PassRunner(device, n, opt, report) {
    Tensor theta = Tensor::randn({n}, kSeed, 0, DType::f32, device);
    arena_ = ParamArena({theta.set_requires_grad()}, 2);
    for (int k = 0; k < 2; ++k) Tensor(arena_.grad(k)).copy_(Tensor::randn({n}, kSeed, 1 + k, DType::f32, device));
    forget_loss_ = Tensor::scalar(kForgetLoss, DType::f32, device);
    copy_dst_ = Tensor::empty({arena_.size()}, DType::f32, device);
  }

  void ieu() {
    const unlearn::IeuOptions options{0, kCap, kSeed};
    // `separate` only holds the reference's scalars.
    unlearn::IeuUpdate fused(arena_, options), quiet(arena_, options), separate(arena_, options);
    fused.set(kLr, kAlpha, kDecay, kSigma);
    quiet.set(kLr, kAlpha, kDecay, 0);
    separate.set(kLr, kAlpha, kDecay, kSigma);
    const Tensor scalars = separate.state().back().second;
    const IeuConfig config{options.momentum, options.forget_loss_cap, options.seed};

    const Tensor& theta = arena_.data();
    begin_pass_case("ieu", theta, copy_dst_);
    const double work = kBytesPerParam * static_cast<double>(arena_.size());
    measure_pass("fused", work, [&] { fused.step(0, 1, forget_loss_); });
    measure_pass("fused, no noise", work, [&] { quiet.step(0, 1, forget_loss_); });
    measure_pass("separate ops", work, [&] {
      ieu_update_reference(theta, arena_.grad(0), arena_.grad(1), {}, scalars, forget_loss_, config);
    });
    if (theta.device().is_cpu()) {
      // The noise alone: one normal per parameter into the copy's buffer, over the same threads,
      // by philox::normal4 a block at a time and by each vector path of cpu::normal_blocks (the
      // step and randn take the best this CPU has), which give the same bits. Its work is the
      // 4 B/param it writes.
      float* out = static_cast<float*>(copy_dst_.data_ptr());
      const int64_t blocks = arena_.size() / 4;
      measure_pass("noise, normal4", 4.0 * static_cast<double>(4 * blocks), [&] {
        cpu::parallel_for(blocks, cpu::kGrain / 4, [&](int64_t b, int64_t e) {
          for (int64_t k = b; k < e; ++k) philox::normal4(kSeed, 9, static_cast<uint64_t>(k), out + 4 * k);
        });
      });
      for (const cpu::NormalPath path : cpu::kNormalPaths) {
        if (path == cpu::NormalPath::scalar || !cpu::cpu_has(path)) continue;  // scalar: normal4's row
        const bool used = path == cpu::normal_path();
        measure_pass(std::string("noise, normal_blocks ") + cpu::normal_path_name(path) + (used ? " (the step's)" : ""),
                     4.0 * static_cast<double>(4 * blocks), [&] {
                       cpu::parallel_for(blocks, cpu::kGrain / 4, [&](int64_t b, int64_t e) {
                         cpu::normal_blocks(path, kSeed, 9, static_cast<uint64_t>(b), e - b, out + 4 * b);
                       });
                     });
      }
    }
  }

 private:
  ParamArena arena_;
  Tensor forget_loss_, copy_dst_;
};

int run(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  const char* note =
      "\nGB/s: bytes the step must move (read θ, g_r, g_f, write θ: 16 B/param; the copy 8 B/param) over the "
      "median time; ratio = rate / the copy's rate, measured in the same run. The separate ops actually move "
      "72 B/param. The fused and separate-ops rows also draw one Philox normal per parameter, which the copy "
      "and \"fused, no noise\" do not.\n\n";
  return run_passes("lethe-bench-ieu", opt, note, [&](Device device, Report& report) {
    for (const int64_t n : opt.sizes) Runner(device, n, opt, report).ieu();
  });
}

}  // namespace
}  // namespace lethe::bench

int main(int argc, char** argv) { return lethe::bench::run_main("lethe-bench-ieu", lethe::bench::run, argc, argv); }
