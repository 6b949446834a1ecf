#pragma once
// The op-test harness, in the spirit of ggml's test-backend-ops: every op is checked
//  - forward against a naive float64 reference (expect_close),
//  - gradient against central differences in float64 (gradcheck),
//  - CPU against CUDA, forward and backward (check_parity; skipped, visibly, without a device).
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "engine/arena.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/tensor.h"
#include "nn/data/dataset.h"

namespace lethe::test {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// Uniform values in [lo, hi) from a fixed Philox stream (never all zeros), as float64 by default.
Tensor random_tensor(const Shape& shape, uint64_t seed, double lo = -1, double hi = 1,
                     DType dtype = DType::f64, Device device = Device::cpu());
// Values with every pair at least `gap` apart (for max/min/pool/argmax tests away from ties).
Tensor distinct_tensor(const Shape& shape, uint64_t seed, double gap = 1e-2, DType dtype = DType::f64);

// All elements of `actual` (any dtype/device) within atol + rtol·|expected|; reports the worst.
void expect_close(const Tensor& actual, const std::vector<double>& expected, double rtol = 1e-6,
                  double atol = 1e-9);
void expect_close(const Tensor& actual, const Tensor& expected, double rtol = 1e-6, double atol = 1e-9);
// Same dtype, shape and bytes (NaN payloads and the sign of zero included), on any devices.
bool bitwise_equal(const Tensor& a, const Tensor& b);

// Checks d(sum(w·fn(inputs)))/d(input) for every floating input that requires grad (float64, CPU)
// against central differences with step eps; w is a fixed random weighting so every output
// element matters.
void gradcheck(const Fn& fn, std::vector<Tensor> inputs, double eps = 1e-6, double rtol = 1e-5,
               double atol = 1e-7);

// Runs fn on float32 copies of `inputs` on the CPU and on cuda:0 and compares outputs and input
// gradients. Inputs flagged in `keep_dtype` (by position) are copied in their own dtype (float64
// scalars an op insists on). Without a device it runs the CPU side only, then records a skip:
// inputs that do not fit fn fail on every machine, not first on a GPU.
void check_parity(const Fn& fn, const std::vector<Tensor>& inputs, double rtol = 1e-4,
                  double atol = 1e-5, const std::vector<bool>& keep_dtype = {});
// check_parity's CPU side alone (fn and its input gradients on the CPU), recording no skip: for a
// caller that reports one skip for many checks.
void check_parity_cpu_side(const Fn& fn, const std::vector<Tensor>& inputs, const std::vector<bool>& keep_dtype = {});

// Square convolution and pooling options: the same stride, padding (and dilation) along H and W.
inline Conv2dOptions conv_options(int stride, int pad, int dilation, int groups) {
  Conv2dOptions o;
  o.stride_h = o.stride_w = stride;
  o.pad_h = o.pad_w = pad;
  o.dilation_h = o.dilation_w = dilation;
  o.groups = groups;
  return o;
}
inline Pool2dOptions pool_options(int kernel, int stride, int pad) {
  Pool2dOptions o;
  o.kernel_h = o.kernel_w = kernel;
  o.stride_h = o.stride_w = stride;
  o.pad_h = o.pad_w = pad;
  return o;
}

// The arena indices that belong to no parameter (alignment padding).
std::vector<int64_t> padding_indices(const ParamArena& arena);

// n images 1×size×size of `classes` classes, sample i of class i % classes: a bright band of two
// rows at the class's position, with fixed pixel noise. Small models learn it in tens of steps.
std::shared_ptr<const data::Dataset> band_task(int64_t n, int64_t size = 8, int64_t classes = 4);

// True when a CUDA device is present; otherwise records a visible skip with `what`.
bool cuda_or_skip(const char* what);
// Records a visible skip of a check this machine cannot run, with the reason: a doctest message,
// and a line "test case<TAB>reason" appended to the file LETHE_SKIP_LOG names (ctest sets it;
// tools/test lists the file after the suite). A run in which nothing but skips happened exits
// 77 under ctest, which reports it as skipped; one whose other checks ran passes.
void record_skip(const std::string& why);
// The checks recorded as skipped so far, and whether the whole run was skips (no assertion made).
int skipped_checks();
bool only_skips_ran();
// How many test cases the run's filters selected (ctest runs one by name: 0 means its name no
// longer selects it).
int selected_test_cases();

// Runs `check` once per float32 GEMM path, with blas::gemm<float> switched to it: lethe's AVX-512
// and AVX2 kernels (each a recorded skip where the CPU lacks its instructions), then OpenBLAS's;
// the path in use is named in failure messages. Restores the previous choice.
void for_each_sgemm_path(const std::function<void()>& check);

}  // namespace lethe::test
