#pragma once
// The registry of op test cases, in the spirit of ggml's test-backend-ops: each op of engine/ops.h
// has cases (tests/op_cases_<group>.cpp) that say what to run, on which inputs, against which
// float64 reference and with which tolerances; tests/op_registry.cpp turns them into four checks,
// each a doctest subcase named after the case:
//   "op registry: forward against float64"       every precision on the CPU,
//   "op registry: forward on CUDA against float64" the same with the inputs on cuda:0,
//   "op registry: gradcheck"                      central differences in float64 (tests/harness.h),
//   "op registry: CPU/CUDA parity"                forward and gradients, float32 (check_parity),
// and a fifth fails naming every op declared in engine/ops.h that has no case.
// One case by name: lethe_tests -tc='op registry: gradcheck' -sc='conv2d/stride2'.
//
// A group registers its cases once, in its own file:
//   LETHE_OP_CASES(pool) {
//     std::vector<OpCase> cases;
//     cases.push_back({.name = "max_pool2d/k2-s2-p0", .fn = ..., .forward = ForwardCheck{...}, ...});
//     return cases;
//   }
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "harness.h"

namespace lethe::test {

// One input of a case: a float64 (or integer) CPU tensor made afresh for every run, so that ops
// writing into their inputs (running statistics, the fused updates) see the same values each time.
struct Input {
  std::string what{};  // named in failure messages
  std::function<Tensor()> make{};
  bool requires_grad = false;  // gradcheck and parity differentiate with respect to it
  bool keep_dtype = false;     // stays as made where the checks convert floating inputs to float32

  Input grad() const;         // this input, requiring grad
  Input fixed_dtype() const;  // this input, never converted (float64 scalars an op insists on)
};
using Inputs = std::vector<Input>;

// random_tensor: uniform in [lo, hi).
Input uniform(const Shape& shape, uint64_t seed, double lo = -1, double hi = 1);
// distinct_tensor: every pair at least `gap` apart (max, min and pooling away from ties).
Input distinct(const Shape& shape, uint64_t seed, double gap = 1e-2);
// Any other tensor (labels, indices, a transposed view), described by `what`.
Input made(std::string what, std::function<Tensor()> make);
// An absent optional operand (Tensor()).
Input absent(std::string what);

// The dtypes of one forward run: floating inputs converted to `dtype`, integer ones to `index`
// when it is set; the output must match the reference within atol + rtol·|expected|.
struct Precision {
  DType dtype = DType::f64;
  double rtol = 1e-12, atol = 1e-12;
  std::optional<DType> index{};
};

// The float64 reference: naive loops over the inputs (as float64 CPU tensors: the float32 runs'
// rounded values), giving the expected output with its shape and the dtype the op returns for
// float64 inputs (a floating one stands for the run's floating dtype), as `expected` builds it.
using Reference = std::function<Tensor(const std::vector<Tensor>&)>;
Tensor expected(const std::vector<double>& values, const Shape& shape, DType dtype = DType::f64);

// fn against the reference at each precision: once untracked and, when an input requires grad,
// once recorded for autograd (ops keep extra state then, such as max_pool2d's argmax).
struct ForwardCheck {
  Inputs inputs{};
  Reference reference{};
  std::vector<Precision> precisions{Precision{}};
};
// tests/harness.h's gradcheck of fn over the inputs that require grad.
struct GradCheck {
  Inputs inputs{};
  double eps = 1e-6, rtol = 1e-5, atol = 1e-7;
};
// tests/harness.h's check_parity: fn on float32 copies on the CPU and cuda:0, outputs and the
// gradients of the inputs that require grad.
struct ParityCheck {
  Inputs inputs{};
  double rtol = 1e-4, atol = 1e-5;
};

struct OpCase {
  std::string name{};  // "<op>/<variant>": the op as declared in engine/ops.h; no ',' (doctest filters)
  Fn fn{};
  std::optional<ForwardCheck> forward{};
  std::optional<GradCheck> gradcheck{};
  std::optional<ParityCheck> parity{};
  // Runs each check of the case under a setting (a convolution backend), restoring it after.
  std::function<void(const std::function<void()>&)> within{};

  std::string op() const { return name.substr(0, name.find('/')); }
};

// Every registered case, grouped by file, in a fixed order.
const std::vector<OpCase>& op_cases();

using CaseGroup = std::vector<OpCase> (*)();
bool register_op_cases(const char* group, CaseGroup cases);

}  // namespace lethe::test

#define LETHE_OP_CASES(group)                                                             \
  static std::vector<::lethe::test::OpCase> lethe_op_cases_##group();                    \
  [[maybe_unused]] static const bool lethe_op_cases_registered_##group =                 \
      ::lethe::test::register_op_cases(#group, lethe_op_cases_##group);                  \
  static std::vector<::lethe::test::OpCase> lethe_op_cases_##group()
