#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include "engine/arena.h"
#include "kernels/cpu/parallel.h"
#include "harness.h"
#include "nn/optim.h"
#include "nn/schedule.h"

#if defined(LETHE_WITH_CUDA)
#include "kernels/cuda/common.cuh"
#endif

using namespace lethe;

namespace {

using NamedList = std::vector<std::pair<std::string, Tensor>>;

// Odd sizes, so every parameter leaves padding behind it in the arena.
const std::vector<Shape> kShapes = {{3}, {5, 7}, {17}, {2, 3}};

std::unique_ptr<ParamArena> make_arena(DType dtype, Device device = Device::cpu(), uint64_t seed = 1,
                                       const std::vector<Shape>& shapes = kShapes) {
  std::vector<Tensor> params;
  for (size_t i = 0; i < shapes.size(); ++i) {
    Tensor p = test::random_tensor(shapes[i], seed + i, -1, 1, dtype, device);
    params.push_back(p.set_requires_grad());
  }
  return std::make_unique<ParamArena>(params);
}

// Gradient buffer 0 gets fresh values in every parameter's slice; the padding stays zero.
void set_grads(const ParamArena& arena, uint64_t seed) {
  for (size_t i = 0; i < arena.params().size(); ++i) {
    const int64_t n = arena.params()[i].numel();
    Tensor slice = arena.grad(0).narrow(0, arena.offset(i), n);
    slice.copy_(test::random_tensor({n}, 1000 * seed + i, -1, 1, slice.dtype()));
  }
}

std::vector<double> values(const Tensor& t) { return t.to(Device::cpu()).to(DType::f64).to_vector<double>(); }

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  const Tensor ca = a.to(Device::cpu()).contiguous(), cb = b.to(Device::cpu()).contiguous();
  return ca.dtype() == cb.dtype() && ca.shape() == cb.shape() &&
         std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0;
}

Tensor state_of(const nn::Optimizer& opt, const std::string& name) {
  for (const auto& [n, t] : opt.state())
    if (n == name) return t;
  FAIL("no state tensor ", name);
  return {};
}

NamedList cloned(const NamedList& state) {
  NamedList out;
  for (const auto& [name, t] : state) out.emplace_back(name, t.clone());
  return out;
}

// torch.optim.SGD, written out naively in float64 over the flat arena.
struct ReferenceSgd {
  nn::SgdOptions o;
  std::vector<double> buf;  // PyTorch's momentum buffer: None (empty) until the first step
  void step(std::vector<double>& p, std::vector<double> g, double lr) {
    for (size_t i = 0; i < p.size(); ++i) {
      if (o.decoupled_weight_decay) p[i] *= 1 - lr * o.weight_decay;
      else g[i] += o.weight_decay * p[i];
    }
    if (o.momentum != 0) {
      if (buf.empty()) {
        buf = g;
      } else {
        for (size_t i = 0; i < p.size(); ++i) buf[i] = o.momentum * buf[i] + (1 - o.dampening) * g[i];
      }
      for (size_t i = 0; i < p.size(); ++i) g[i] = o.nesterov ? g[i] + o.momentum * buf[i] : buf[i];
    }
    for (size_t i = 0; i < p.size(); ++i) p[i] -= lr * g[i];
  }
};

// torch.optim.AdamW, naively in float64.
struct ReferenceAdamW {
  nn::AdamWOptions o;
  std::vector<double> m, v;
  int t = 0;
  void step(std::vector<double>& p, const std::vector<double>& g, double lr) {
    if (m.empty()) m = v = std::vector<double>(p.size(), 0.0);
    ++t;
    const double bc1 = 1 - std::pow(o.beta1, t), bc2 = 1 - std::pow(o.beta2, t);
    for (size_t i = 0; i < p.size(); ++i) {
      p[i] *= 1 - lr * o.weight_decay;
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * g[i];
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * g[i] * g[i];
      p[i] -= lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + o.eps);
    }
  }
};

constexpr int kSteps = 5;
double lr_of_step(int s) { return 0.05 * (1 + s); }  // changes every step: set_lr must take effect

struct Tolerance {
  double rtol, atol;
};
Tolerance tolerance(DType dtype) { return dtype == DType::f64 ? Tolerance{1e-12, 1e-14} : Tolerance{2e-5, 2e-6}; }

struct SgdVariant {
  const char* name;
  nn::SgdOptions options;
};
std::vector<SgdVariant> sgd_variants() {
  auto make = [](double momentum, double dampening, double decay, bool nesterov, bool decoupled) {
    nn::SgdOptions o;
    o.lr = 0.1;
    o.momentum = momentum;
    o.dampening = dampening;
    o.weight_decay = decay;
    o.nesterov = nesterov;
    o.decoupled_weight_decay = decoupled;
    return o;
  };
  return {{"plain", make(0, 0, 0, false, false)},
          {"momentum", make(0.9, 0, 0, false, false)},
          {"dampening", make(0.9, 0.3, 0, false, false)},
          {"nesterov", make(0.9, 0, 0, true, false)},
          {"coupled decay", make(0, 0, 0.1, false, false)},
          {"decoupled decay", make(0, 0, 0.1, false, true)},
          {"momentum, coupled decay", make(0.9, 0, 0.1, false, false)},
          {"momentum, decoupled decay", make(0.9, 0.3, 0.1, false, true)},
          {"nesterov, coupled decay", make(0.9, 0, 0.1, true, false)},
          {"nesterov, decoupled decay", make(0.9, 0, 0.1, true, true)}};
}


}  // namespace

TEST_CASE("optim: SGD variants against a float64 reference of torch.optim.SGD, float32 and float64") {
  for (const DType dtype : {DType::f64, DType::f32}) {
    for (const SgdVariant& variant : sgd_variants()) {
      INFO(variant.name, ", ", dtype_name(dtype));
      auto arena = make_arena(dtype);
      auto opt = nn::make_sgd(*arena, variant.options);
      CHECK(opt->name() == "sgd");
      ReferenceSgd ref{variant.options, {}};
      std::vector<double> p = values(arena->data());
      for (int s = 0; s < kSteps; ++s) {
        set_grads(*arena, s);
        opt->set_lr(lr_of_step(s));
        opt->step();
        ref.step(p, values(arena->grad(0)), lr_of_step(s));
      }
      CHECK(opt->steps() == kSteps);
      const Tolerance tol = tolerance(dtype);
      test::expect_close(arena->data(), p, tol.rtol, tol.atol);
      if (variant.options.momentum != 0)
        test::expect_close(state_of(*opt, "momentum_buffer"), ref.buf, tol.rtol, tol.atol);
    }
  }
}

TEST_CASE("optim: AdamW against a float64 reference of torch.optim.AdamW, float32 and float64") {
  for (const DType dtype : {DType::f64, DType::f32}) {
    // β1 = 0.3: lerp's other formula (weight 1 − β1 ≥ 0.5), the CPU loop's other instantiation.
    for (const auto& [decay, beta1] : {std::pair{0.0, 0.9}, std::pair{0.1, 0.9}, std::pair{0.1, 0.3}}) {
      const std::string setting = "weight decay " + std::to_string(decay) + ", beta1 " + std::to_string(beta1);
      INFO(dtype_name(dtype), ", ", setting);  // clang 14 captures no structured binding (INFO's lambda)
      nn::AdamWOptions o;
      o.weight_decay = decay;
      o.beta1 = beta1;
      o.beta2 = 0.99;
      auto arena = make_arena(dtype);
      auto opt = nn::make_adamw(*arena, o);
      CHECK(opt->name() == "adamw");
      ReferenceAdamW ref{o, {}, {}, 0};
      std::vector<double> p = values(arena->data());
      for (int s = 0; s < kSteps; ++s) {
        set_grads(*arena, s);
        opt->set_lr(lr_of_step(s));
        opt->step();
        ref.step(p, values(arena->grad(0)), lr_of_step(s));
      }
      const Tolerance tol = tolerance(dtype);
      test::expect_close(arena->data(), p, tol.rtol, tol.atol);
      test::expect_close(state_of(*opt, "exp_avg"), ref.m, tol.rtol, tol.atol);
      test::expect_close(state_of(*opt, "exp_avg_sq"), ref.v, tol.rtol, tol.atol);
    }
  }
}

TEST_CASE("optim: known values of PyTorch's semantics (first-step momentum, Nesterov, decay, AdamW)") {
  // θ = 1, g = 0.5 on both steps, lr 0.1; hand-computed as torch.optim computes them.
  auto run = [](auto make_opt, std::vector<double> expected) {
    Tensor theta = Tensor::from_vector<double>({1.0}, {1});
    theta.set_requires_grad();
    ParamArena arena({theta});
    std::unique_ptr<nn::Optimizer> opt = make_opt(arena);
    for (const double want : expected) {
      Tensor(arena.grad(0)).fill_(0).narrow(0, 0, 1).fill_(0.5);
      opt->step();
      CHECK(theta.item() == doctest::Approx(want).epsilon(1e-13));
    }
  };
  auto sgd = [](double momentum, double dampening, double decay, bool nesterov, bool decoupled) {
    return [=](const ParamArena& a) {
      return nn::make_sgd(a, {0.1, momentum, dampening, decay, nesterov, decoupled});
    };
  };
  // The momentum buffer starts as g itself, undamped: v = 0.5, then 0.9·0.5 + 0.5·0.5 = 0.7.
  run(sgd(0.9, 0.5, 0, false, false), {0.95, 0.88});
  // Nesterov: direction g + μv = 0.95, then 0.5 + 0.9·0.95 = 1.355.
  run(sgd(0.9, 0, 0, true, false), {0.905, 0.7695});
  // Coupled decay enters the momentum (g' = 0.6, then 0.594); decoupled decay does not.
  run(sgd(0.9, 0, 0.1, false, false), {0.94, 0.8266});
  run(sgd(0.9, 0, 0.1, false, true), {0.94, 0.8356});
  // AdamW under a constant gradient moves by about lr per step, after decaying θ by 1 − lr·λ.
  run([](const ParamArena& a) { return nn::make_adamw(a, {0.1, 0.9, 0.999, 1e-8, 0.01}); },
      {0.899000002, 0.7981010039980005});
}

TEST_CASE("optim: the arena's padding stays zero in parameters and state, with weight decay") {
  auto check_padding = [](const ParamArena& arena, const nn::Optimizer& opt) {
    const std::vector<int64_t> pad = test::padding_indices(arena);
    REQUIRE(!pad.empty());
    std::vector<std::pair<std::string, Tensor>> tensors = opt.state();
    tensors.erase(tensors.end() - 1);  // the scalars
    tensors.emplace_back("params", arena.data());
    for (const auto& [name, t] : tensors) {
      const std::vector<double> v = values(t);
      int64_t nonzero = 0;
      for (const int64_t i : pad) nonzero += v[i] != 0;
      const std::string tensor = name;  // clang 14 captures no structured binding (INFO's lambda)
      INFO(opt.name(), " ", tensor);
      CHECK(nonzero == 0);
    }
  };
  for (const SgdVariant& variant : sgd_variants()) {
    INFO(variant.name);
    auto arena = make_arena(DType::f32);
    auto opt = nn::make_sgd(*arena, variant.options);
    for (int s = 0; s < 3; ++s) {
      set_grads(*arena, s);
      opt->step();
    }
    check_padding(*arena, *opt);
  }
  auto arena = make_arena(DType::f32);
  auto opt = nn::make_adamw(*arena, {0.1, 0.9, 0.999, 1e-8, 0.1});
  for (int s = 0; s < 3; ++s) {
    set_grads(*arena, s);
    opt->step();
  }
  check_padding(*arena, *opt);
}

TEST_CASE("optim: set_lr takes effect on the next step, lr and steps are reported") {
  auto arena = make_arena(DType::f64);
  auto opt = nn::make_sgd(*arena, {0.1, 0, 0, 0, false, false});
  CHECK(opt->lr() == 0.1);
  CHECK(opt->steps() == 0);
  set_grads(*arena, 1);
  const Tensor before = arena->data().clone();
  opt->set_lr(0);
  CHECK(opt->lr() == 0);
  CHECK(values(state_of(*opt, "scalars"))[0] == 0);
  opt->step();
  CHECK(bitwise_equal(arena->data(), before));  // lr 0: nothing moves
  opt->set_lr(0.25);
  opt->step();
  std::vector<double> expected = values(before);
  const std::vector<double> g = values(arena->grad(0));
  for (size_t i = 0; i < expected.size(); ++i) expected[i] -= 0.25 * g[i];
  test::expect_close(arena->data(), expected, 1e-15, 0);
  CHECK(opt->steps() == 2);
  CHECK(values(state_of(*opt, "scalars")) == std::vector<double>{0.25, 2});
  CHECK_THROWS_WITH_AS(opt->set_lr(-1), doctest::Contains("sgd: learning rate must be finite and non-negative, got -1"),
                       Error);
  CHECK_THROWS_WITH_AS(opt->step(3), doctest::Contains("arena: no gradient buffer 3"), Error);
  CHECK(opt->steps() == 2);
}

TEST_CASE("optim: options are validated with clear errors") {
  auto arena = make_arena(DType::f32);
  CHECK_THROWS_WITH_AS(nn::make_sgd(*arena, {0.1, 0, 0, 0, true, false}),
                       doctest::Contains("sgd: Nesterov momentum needs momentum > 0 and dampening 0"), Error);
  CHECK_THROWS_WITH_AS(nn::make_sgd(*arena, {0.1, 0.9, 0.1, 0, true, false}),
                       doctest::Contains("dampening 0.1"), Error);
  CHECK_THROWS_WITH_AS(nn::make_sgd(*arena, {-0.1, 0, 0, 0, false, false}),
                       doctest::Contains("sgd: learning rate must be finite and non-negative, got -0.1"), Error);
  CHECK_THROWS_WITH_AS(nn::make_sgd(*arena, {0.1, -1, 0, 0, false, false}), doctest::Contains("sgd: momentum"), Error);
  CHECK_THROWS_WITH_AS(nn::make_adamw(*arena, {1e-3, 1.0, 0.999, 1e-8, 0}),
                       doctest::Contains("adamw: beta1 must be in [0, 1), got 1"), Error);
  CHECK_THROWS_WITH_AS(nn::make_adamw(*arena, {1e-3, 0.9, 0.999, -1, 0}), doctest::Contains("adamw: eps"), Error);
  const ParamArena empty;
  CHECK_THROWS_WITH_AS(nn::make_sgd(empty, {}), doctest::Contains("optimizer: the arena holds no parameter elements"),
                       Error);
}

TEST_CASE("optim: state round trip continues bit-exactly (resume == uninterrupted run)") {
  nn::SgdOptions sgd;
  sgd.lr = 0.05;
  sgd.momentum = 0.9;
  sgd.nesterov = true;
  sgd.weight_decay = 5e-4;
  nn::Schedule schedule;
  schedule.kind = nn::ScheduleKind::cosine;
  schedule.base_lr = 0.05;
  schedule.total_steps = 8;
  schedule.warmup_steps = 2;
  using Make = std::function<std::unique_ptr<nn::Optimizer>(const ParamArena&)>;
  const std::vector<std::pair<const char*, Make>> makers = {
      {"sgd", [&](const ParamArena& a) { return nn::make_sgd(a, sgd); }},
      {"adamw", [](const ParamArena& a) { return nn::make_adamw(a, {}); }}};
  for (const auto& [name, make] : makers) {
    const std::string optimizer = name;  // clang 14 captures no structured binding (INFO's lambda)
    INFO(optimizer);
    auto run_steps = [&](const ParamArena& arena, nn::Optimizer& opt, int64_t from, int64_t to) {
      for (int64_t s = from; s < to; ++s) {
        set_grads(arena, static_cast<uint64_t>(s));
        opt.set_lr(schedule.lr_at(s));
        opt.step();
      }
    };
    // Uninterrupted: 8 steps.
    auto arena_a = make_arena(DType::f32);
    auto opt_a = make(*arena_a);
    run_steps(*arena_a, *opt_a, 0, 8);
    // 4 steps, save, then a fresh arena and optimizer (other values) that load and continue.
    auto arena_b = make_arena(DType::f32);
    auto opt_b = make(*arena_b);
    run_steps(*arena_b, *opt_b, 0, 4);
    const NamedList saved = cloned(opt_b->state());
    const Tensor saved_params = arena_b->data().clone();
    auto arena_c = make_arena(DType::f32, Device::cpu(), 77);
    auto opt_c = make(*arena_c);
    Tensor(arena_c->data()).copy_(saved_params);
    opt_c->load_state(saved);
    CHECK(opt_c->steps() == 4);
    CHECK(opt_c->lr() == schedule.lr_at(3));
    run_steps(*arena_c, *opt_c, 4, 8);
    CHECK(opt_c->steps() == opt_a->steps());
    CHECK(bitwise_equal(arena_c->data(), arena_a->data()));
    const NamedList sa = opt_a->state(), sc = opt_c->state();
    REQUIRE(sa.size() == sc.size());
    for (size_t i = 0; i < sa.size(); ++i) {
      INFO(sa[i].first);
      CHECK(sa[i].first == sc[i].first);
      CHECK(bitwise_equal(sa[i].second, sc[i].second));
    }
  }
}

TEST_CASE("optim: load_state rejects wrong names, shapes, dtypes and step counts, changing nothing") {
  auto arena = make_arena(DType::f32);
  auto opt = nn::make_sgd(*arena, {0.1, 0.9, 0, 0, false, false});
  set_grads(*arena, 0);
  opt->step();
  const NamedList good = cloned(opt->state());
  REQUIRE(good.size() == 2);
  CHECK(good[0].first == "momentum_buffer");
  CHECK(good[1].first == "scalars");
  const Tensor momentum = good[0].second, scalars = good[1].second;
  const int64_t n = arena->size();
  const Tensor momentum_before = state_of(*opt, "momentum_buffer").clone();
  auto rejects = [&](const NamedList& state, const std::string& message) {
    CHECK_THROWS_WITH_AS(opt->load_state(state), doctest::Contains(message.c_str()), Error);
    CHECK(opt->steps() == 1);
    CHECK(bitwise_equal(state_of(*opt, "momentum_buffer"), momentum_before));
  };
  rejects({{"scalars", scalars}}, "sgd load_state: expected the tensors momentum_buffer, scalars, got scalars");
  rejects({{"momentum", momentum}, {"scalars", scalars}}, "sgd load_state: missing 'momentum_buffer'");
  rejects({{"momentum_buffer", Tensor::zeros({5})}, {"scalars", scalars}},
          "sgd load_state: 'momentum_buffer' is float32[5] on cpu, expected float32[" + std::to_string(n) + "]");
  rejects({{"momentum_buffer", momentum.to(DType::f64)}, {"scalars", scalars}},
          "'momentum_buffer' is float64[" + std::to_string(n) + "] on cpu, expected float32");
  rejects({{"momentum_buffer", momentum}, {"scalars", Tensor::from_vector<double>({0.1, 1.5}, {2})}},
          "sgd load_state: the saved step count is 1.5");
  rejects({{"momentum_buffer", momentum}, {"scalars", Tensor::from_vector<double>({-1, 1}, {2})}},
          "sgd load_state: the saved learning rate is -1");
  // The right names in another order load fine.
  CHECK_NOTHROW(opt->load_state({{"scalars", scalars}, {"momentum_buffer", momentum}}));
}

TEST_CASE("optim: clip_grad_norm against a float64 reference, below the threshold nothing changes") {
  for (const DType dtype : {DType::f64, DType::f32}) {
    INFO(dtype_name(dtype));
    auto arena = make_arena(dtype);
    set_grads(*arena, 3);
    const std::vector<double> g = values(arena->grad(0));
    double sum = 0;
    for (const double x : g) sum += x * x;
    const double norm = std::sqrt(sum);
    // Above the norm: nothing moves, bit for bit.
    const Tensor before = arena->grad(0).clone();
    const Tensor n1 = nn::clip_grad_norm(*arena, 0, norm * 2);
    CHECK(n1.dtype() == DType::f64);
    CHECK(n1.dim() == 0);
    CHECK(n1.item() == doctest::Approx(norm).epsilon(1e-14));
    CHECK(bitwise_equal(arena->grad(0), before));
    // Below: scaled by max_norm / (norm + 1e-6).
    const Tensor n2 = nn::clip_grad_norm(*arena, 0, 0.5);
    CHECK(n2.item() == doctest::Approx(norm).epsilon(1e-14));
    std::vector<double> expected = g;
    for (double& x : expected) x *= 0.5 / (norm + 1e-6);
    const Tolerance tol = tolerance(dtype);
    test::expect_close(arena->grad(0), expected, tol.rtol, tol.atol);
    CHECK(nn::clip_grad_norm(*arena, 0, 0.5).item() == doctest::Approx(0.5).epsilon(1e-5));
  }
  auto arena = make_arena(DType::f32);
  CHECK_THROWS_WITH_AS(nn::clip_grad_norm(*arena, 0, 0),
                       doctest::Contains("clip_grad_norm: max_norm must be positive, got 0"), Error);
  CHECK_THROWS_WITH_AS(nn::clip_grad_norm(*arena, 1, 1), doctest::Contains("arena: no gradient buffer 1"), Error);
}

TEST_CASE("optim: clip_grad_norm and the fused steps do not depend on the thread count") {
  const int threads = num_threads();
  // Several reduction chunks' worth of gradients.
  const std::vector<Shape> shapes = {{3}, {300, 301}, {17}};
  std::vector<Tensor> norms, grads, params;
  for (const int t : {1, 2}) {
    set_num_threads(t);
    auto arena = make_arena(DType::f32, Device::cpu(), 5, shapes);
    set_grads(*arena, 9);
    norms.push_back(nn::clip_grad_norm(*arena, 0, 1.0));
    grads.push_back(arena->grad(0).clone());
    auto opt = nn::make_adamw(*arena, {});
    opt->step();
    opt->step();
    params.push_back(arena->data().clone());
  }
  set_num_threads(threads);
  CHECK(norms[0].item() > 1);  // it did clip
  CHECK(bitwise_equal(norms[0], norms[1]));
  CHECK(bitwise_equal(grads[0], grads[1]));
  CHECK(bitwise_equal(params[0], params[1]));
}

TEST_CASE("optim: CPU/CUDA parity of the fused steps, clipping and cross-device state loading") {
  if (!test::cuda_or_skip("optimizer CPU/CUDA parity")) return;
  const Device cuda = Device::cuda();
  using Make = std::function<std::unique_ptr<nn::Optimizer>(const ParamArena&)>;
  std::vector<std::pair<std::string, Make>> makers;
  for (const SgdVariant& variant : sgd_variants())
    makers.emplace_back(variant.name, [o = variant.options](const ParamArena& a) { return nn::make_sgd(a, o); });
  makers.emplace_back("adamw", [](const ParamArena& a) { return nn::make_adamw(a, {0.01, 0.9, 0.999, 1e-8, 0.1}); });
  for (const auto& [name, make] : makers) {
    const std::string optimizer = name;  // clang 14 captures no structured binding (INFO's lambda)
    INFO(optimizer);
    auto cpu_arena = make_arena(DType::f32), gpu_arena = make_arena(DType::f32, cuda);
    Tensor(gpu_arena->data()).copy_(cpu_arena->data());
    auto cpu_opt = make(*cpu_arena), gpu_opt = make(*gpu_arena);
    for (int s = 0; s < kSteps; ++s) {
      set_grads(*cpu_arena, s);
      Tensor(gpu_arena->grad(0)).copy_(cpu_arena->grad(0));
      const Tensor cpu_norm = nn::clip_grad_norm(*cpu_arena, 0, 2.0), gpu_norm = nn::clip_grad_norm(*gpu_arena, 0, 2.0);
      CHECK(gpu_norm.is_cuda());
      CHECK(gpu_norm.item() == doctest::Approx(cpu_norm.item()).epsilon(1e-12));
      test::expect_close(gpu_arena->grad(0), cpu_arena->grad(0), 1e-6, 1e-7);
      cpu_opt->set_lr(lr_of_step(s) / 10);
      gpu_opt->set_lr(lr_of_step(s) / 10);
      cpu_opt->step();
      gpu_opt->step();
    }
    test::expect_close(gpu_arena->data(), cpu_arena->data(), 1e-5, 1e-6);
    const NamedList cs = cpu_opt->state(), gs = gpu_opt->state();
    for (size_t i = 0; i < cs.size(); ++i) test::expect_close(gs[i].second, cs[i].second, 1e-5, 1e-6);
    // CPU state (as a checkpoint would hold it) into the CUDA optimizer.
    gpu_opt->load_state(cloned(cs));
    CHECK(gpu_opt->steps() == kSteps);
    CHECK(bitwise_equal(state_of(*gpu_opt, "scalars"), state_of(*cpu_opt, "scalars")));
  }
}

#if defined(LETHE_WITH_CUDA)
TEST_CASE("optim: a CUDA-graph-captured step follows set_lr and the device step counter") {
  if (!test::cuda_or_skip("optimizer step in a CUDA graph")) return;
  const Device cuda = Device::cuda();
  for (const bool adamw : {false, true}) {
    const char* name = adamw ? "adamw" : "sgd";
    INFO(name);
    auto make = [&](const ParamArena& a) {
      return adamw ? nn::make_adamw(a, {}) : nn::make_sgd(a, {0.1, 0.9, 0, 1e-2, true, false});
    };
    auto eager_arena = make_arena(DType::f32, cuda), graph_arena = make_arena(DType::f32, cuda);
    set_grads(*eager_arena, 4);
    Tensor(graph_arena->grad(0)).copy_(eager_arena->grad(0));
    auto eager = make(*eager_arena), graphed = make(*graph_arena);
    const cudaStream_t stream = cuda::stream(0);
    LETHE_CUDA_CHECK(cudaStreamSynchronize(stream));
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    LETHE_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    graphed->step();  // captured, not run
    LETHE_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    LETHE_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    for (int s = 0; s < 4; ++s) {
      eager->set_lr(lr_of_step(s));
      eager->step();
      graphed->set_lr(lr_of_step(s));
      LETHE_CUDA_CHECK(cudaGraphLaunch(exec, stream));
    }
    LETHE_CUDA_CHECK(cudaStreamSynchronize(stream));
    LETHE_CUDA_CHECK(cudaGraphExecDestroy(exec));
    LETHE_CUDA_CHECK(cudaGraphDestroy(graph));
    CHECK(values(state_of(*graphed, "scalars"))[1] == 4);  // the device counter advanced on each replay
    CHECK(bitwise_equal(graph_arena->data(), eager_arena->data()));
  }
}
#endif

TEST_CASE("schedule: constant and step decay, with and without warm-up") {
  nn::Schedule s;
  s.base_lr = 0.1;
  CHECK(s.lr_at(0) == 0.1);
  CHECK(s.lr_at(12345) == 0.1);
  s.warmup_steps = 4;  // linear from 0: 0, 0.025, 0.05, 0.075, then the schedule
  CHECK(s.lr_at(0) == 0);
  CHECK(s.lr_at(2) == doctest::Approx(0.05).epsilon(1e-15));
  CHECK(s.lr_at(3) == doctest::Approx(0.075).epsilon(1e-15));
  CHECK(s.lr_at(4) == 0.1);
  s.kind = nn::ScheduleKind::step;
  s.step_size = 3;
  s.gamma = 0.5;
  s.warmup_steps = 0;
  const std::vector<double> expected = {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025};
  for (size_t i = 0; i < expected.size(); ++i) CHECK(s.lr_at(static_cast<int64_t>(i)) == expected[i]);
  s.warmup_steps = 2;  // the decay counts the steps after warm-up
  CHECK(s.lr_at(1) == 0.05);
  CHECK(s.lr_at(4) == 0.1);
  CHECK(s.lr_at(5) == 0.05);
}

TEST_CASE("schedule: cosine is PyTorch's LambdaLR formula of the WORKLOADS recipe, bit for bit") {
  nn::Schedule s;
  s.kind = nn::ScheduleKind::cosine;
  s.base_lr = 0.05;
  s.total_steps = 938;
  for (const int64_t step : {int64_t{0}, int64_t{1}, int64_t{100}, int64_t{469}, int64_t{937}}) {
    // torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    const double torch = 0.05 * (0.5 * (1 + std::cos(std::numbers::pi * static_cast<double>(step) / 938)));
    CHECK(s.lr_at(step) == torch);
  }
  CHECK(s.lr_at(0) == 0.05);
  CHECK(s.lr_at(469) == doctest::Approx(0.025).epsilon(1e-12));
  CHECK(s.lr_at(938) == 0);
  CHECK(s.lr_at(2000) == 0);  // held at the end
  // Warm-up, then the cosine over the remaining steps down to final_lr.
  s.warmup_steps = 38;
  s.final_lr = 0.001;
  CHECK(s.lr_at(19) == doctest::Approx(0.025).epsilon(1e-15));
  CHECK(s.lr_at(38) == 0.05);
  CHECK(s.lr_at(38 + 450) == doctest::Approx(0.001 + 0.049 / 2).epsilon(1e-12));
  CHECK(s.lr_at(938) == 0.001);
}

TEST_CASE("schedule: parsing and invalid schedules give clear errors") {
  CHECK(nn::parse_schedule("constant") == nn::ScheduleKind::constant);
  CHECK(nn::parse_schedule("step") == nn::ScheduleKind::step);
  CHECK(nn::parse_schedule("cosine") == nn::ScheduleKind::cosine);
  CHECK(nn::schedule_name(nn::ScheduleKind::cosine) == "cosine");
  CHECK_THROWS_WITH_AS(nn::parse_schedule("linear"),
                       doctest::Contains("schedule: unknown schedule 'linear' (constant, step, cosine)"), Error);
  nn::Schedule s;
  CHECK_THROWS_WITH_AS(s.lr_at(-1), doctest::Contains("schedule: negative step -1"), Error);
  s.kind = nn::ScheduleKind::step;
  CHECK_THROWS_WITH_AS(s.lr_at(0), doctest::Contains("schedule step: step size must be positive, got 0"), Error);
  s.kind = nn::ScheduleKind::cosine;
  s.total_steps = 10;
  s.warmup_steps = 10;
  CHECK_THROWS_WITH_AS(s.lr_at(0),
                       doctest::Contains("schedule cosine: total steps (10) must exceed the warm-up steps (10)"), Error);
  s.warmup_steps = -1;
  CHECK_THROWS_WITH_AS(s.validate(), doctest::Contains("warm-up steps must be non-negative, got -1"), Error);
  s.warmup_steps = 0;
  s.base_lr = -1;
  CHECK_THROWS_WITH_AS(s.validate(), doctest::Contains("base lr must be finite and non-negative, got -1"), Error);
}
