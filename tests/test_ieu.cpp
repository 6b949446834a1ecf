#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "engine/arena.h"
#include "engine/ops.h"
#include "engine/ops/updates.h"
#include "kernels/cpu/parallel.h"
#include "harness.h"
#include "kernels/common/philox.h"
#include "unlearn/ieu_update.h"

using namespace lethe;

namespace {

using NamedList = std::vector<std::pair<std::string, Tensor>>;

// Odd, and more than three grains of elements: several threads, and a last Philox block of one.
constexpr int64_t kOddN = 3 * cpu::kGrain + 13;
constexpr double kCap = 2.0;  // forget losses 1.5 (gate open) and 2.5 (closed) around it

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  const Tensor ca = a.to(Device::cpu()).contiguous(), cb = b.to(Device::cpu()).contiguous();
  return ca.dtype() == cb.dtype() && ca.shape() == cb.shape() &&
         std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0;
}

std::vector<double> values(const Tensor& t) { return t.to(Device::cpu()).to(DType::f64).to_vector<double>(); }

// The operands of the raw update, with values everywhere (momentum too, so μ·v matters at once).
struct Operands {
  Tensor params, grad_retain, grad_forget, momentum, scalars;

  Operands clone() const {
    auto copy = [](const Tensor& t) { return t.defined() ? t.clone() : Tensor(); };
    return {params.clone(), grad_retain.clone(), copy(grad_forget), copy(momentum), scalars.clone()};
  }
  void set(double lr, double alpha, double weight_decay, double sigma) {
    scalars.narrow(0, ieu::kLr, 1).fill_(lr);
    scalars.narrow(0, ieu::kAlpha, 1).fill_(alpha);
    scalars.narrow(0, ieu::kWeightDecay, 1).fill_(weight_decay);
    scalars.narrow(0, ieu::kSigma, 1).fill_(sigma);
  }
  double scalar(int slot) const { return values(scalars)[slot]; }
};

Operands make_operands(int64_t n, DType dtype, bool forget, bool momentum, Device device = Device::cpu()) {
  auto random = [&](uint64_t seed) { return test::random_tensor({n}, seed, -1, 1, dtype, device); };
  return {random(1), random(2), forget ? random(3) : Tensor(), momentum ? random(4) : Tensor(),
          Tensor::zeros({ieu::kScalars}, DType::f64, device)};
}

void fused(const Operands& o, const Tensor& loss, const IeuConfig& c) {
  ieu_update(o.params, o.grad_retain, o.grad_forget, o.momentum, o.scalars, loss, c);
}
void reference(const Operands& o, const Tensor& loss, const IeuConfig& c) {
  ieu_update_reference(o.params, o.grad_retain, o.grad_forget, o.momentum, o.scalars, loss, c);
}

void check_same(const Operands& a, const Operands& b) {
  CHECK(bitwise_equal(a.params, b.params));
  if (a.momentum.defined()) CHECK(bitwise_equal(a.momentum, b.momentum));
  CHECK(bitwise_equal(a.scalars, b.scalars));
}

enum class Gate { none, open, closed };
const char* gate_name(Gate g) { return g == Gate::none ? "no gate" : g == Gate::open ? "gate open" : "gate closed"; }
// The forget loss of a gate: float32 [] or float64 [1], either side of kCap; undefined without one.
Tensor forget_loss(Gate gate, DType dtype, Device device = Device::cpu()) {
  if (gate == Gate::none) return {};
  const double loss = gate == Gate::open ? 1.5 : 2.5;
  return dtype == DType::f32 ? Tensor::scalar(loss, DType::f32, device)
                             : Tensor::full({1}, loss, DType::f64, device);
}

// Arena of a few odd-sized parameters (padding behind each) with 2 gradient buffers, filled
// with values in the parameters' slices only.
std::unique_ptr<ParamArena> make_arena(DType dtype, Device device = Device::cpu()) {
  const std::vector<Shape> shapes = {{3}, {5, 7}, {17}};
  std::vector<Tensor> params;
  for (size_t i = 0; i < shapes.size(); ++i)
    params.push_back(test::random_tensor(shapes[i], 10 + i, -1, 1, dtype, device).set_requires_grad());
  auto arena = std::make_unique<ParamArena>(params, 2);
  for (int k = 0; k < 2; ++k) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      const int64_t n = shapes[i].numel();
      Tensor slice = arena->grad(k).narrow(0, arena->offset(i), n);
      slice.copy_(test::random_tensor({n}, 100 * (k + 1) + i, -1, 1, dtype, device));
    }
  }
  return arena;
}


NamedList cloned(const NamedList& state) {
  NamedList out;
  for (const auto& [name, t] : state) out.emplace_back(name, t.clone());
  return out;
}

double lr_of_step(int s) { return 0.05 * (1 + s); }  // changes every step: set() must take effect

}  // namespace

TEST_CASE("ieu: the fused update equals the separate-ops reference bit for bit on the CPU") {
  for (const DType dtype : {DType::f32, DType::f64}) {
    for (const double momentum : {0.0, 0.9}) {
      for (const bool forget : {false, true}) {
        for (const Gate gate : {Gate::none, Gate::open, Gate::closed}) {
          for (const double sigma : {0.0, 0.03}) {
            INFO(dtype_name(dtype), ", momentum ", momentum, ", forget gradient ", forget, ", ", gate_name(gate),
                 ", sigma ", sigma);
            const IeuConfig config{momentum, gate == Gate::none ? INFINITY : kCap, 7};
            const Tensor loss = forget_loss(gate, dtype);
            Operands a = make_operands(kOddN, dtype, forget, momentum != 0), b = a.clone();
            const Tensor before = a.params.clone();
            for (int s = 0; s < 3; ++s) {
              a.set(lr_of_step(s), 0.5, 0.01, sigma);
              b.set(lr_of_step(s), 0.5, 0.01, sigma);
              fused(a, loss, config);
              reference(b, loss, config);
              check_same(a, b);
            }
            CHECK(!bitwise_equal(a.params, before));
            CHECK(a.scalar(ieu::kStep) == 3);
            CHECK(a.scalar(ieu::kAlphaEffective) == (gate == Gate::closed ? 0 : 0.5));
          }
        }
      }
    }
  }
}

TEST_CASE("ieu: IeuUpdate over an arena equals the reference, padding stays zero without noise") {
  for (const DType dtype : {DType::f32, DType::f64}) {
    for (const double sigma : {0.0, 0.1}) {
      INFO(dtype_name(dtype), ", sigma ", sigma);
      auto arena = make_arena(dtype);
      Operands ref{arena->data().clone(), arena->grad(0), arena->grad(1),
                   Tensor::zeros({arena->size()}, dtype), Tensor::zeros({ieu::kScalars}, DType::f64)};
      const IeuConfig config{0.9, kCap, 3};
      unlearn::IeuUpdate update(*arena, {0.9, kCap, 3});
      CHECK(update.steps() == 0);
      for (int s = 0; s < 4; ++s) {
        const Tensor loss = forget_loss(s % 2 ? Gate::closed : Gate::open, dtype);
        update.set(lr_of_step(s), 0.7, 0.05, sigma);
        ref.set(lr_of_step(s), 0.7, 0.05, sigma);
        update.step(0, 1, loss);
        reference(ref, loss, config);
      }
      CHECK(update.steps() == 4);
      const NamedList state = update.state();
      REQUIRE(state.size() == 2);
      CHECK(state[0].first == "momentum_buffer");
      CHECK(state[1].first == "scalars");
      CHECK(bitwise_equal(arena->data(), ref.params));
      CHECK(bitwise_equal(state[0].second, ref.momentum));
      CHECK(bitwise_equal(state[1].second, ref.scalars));
      const std::vector<double> theta = values(arena->data());
      int64_t nonzero = 0;
      for (const int64_t i : test::padding_indices(*arena)) nonzero += theta[i] != 0;
      CHECK((nonzero == 0) == (sigma == 0));  // noise reaches the (unread) padding too
    }
  }
  // Without a forget gradient or momentum: the retain gradient alone.
  auto arena = make_arena(DType::f32);
  Operands ref{arena->data().clone(), arena->grad(0), {}, {}, Tensor::zeros({ieu::kScalars}, DType::f64)};
  unlearn::IeuUpdate update(*arena, {});
  CHECK(update.state().size() == 1);
  update.set(0.1, 0.5, 0.01, 0.02);
  ref.set(0.1, 0.5, 0.01, 0.02);
  update.step(0, -1);
  reference(ref, {}, {});
  CHECK(bitwise_equal(arena->data(), ref.params));
}

TEST_CASE("ieu: the noise of element i at step t is Tensor::randn(seed, kIeuNoiseStream + t)[i]") {
  for (const DType dtype : {DType::f32, DType::f64}) {
    INFO(dtype_name(dtype));
    constexpr int64_t n = 37;
    constexpr uint64_t seed = 99;
    // θ = 0, η = 0: θ = (0·1 − 0·g) + 1·ξ = ξ exactly.
    Operands o = make_operands(n, dtype, true, false);
    o.set(0, 0.5, 0.1, 1);
    for (int t = 1; t <= 3; ++t) {
      o.params.zero_();
      fused(o, {}, {0, INFINITY, seed});
      const Tensor expected = Tensor::randn({n}, seed, kIeuNoiseStream + t, dtype);
      CHECK(values(o.params) == values(expected));
      CHECK(values(o.params)[n - 1] == philox::normal(seed, kIeuNoiseStream + t, n - 1));
    }
  }
}

TEST_CASE("ieu: a hand-computed 3-element case with momentum and the bounded-ascent gate") {
  Operands o{Tensor::from_vector<double>({1, -2, 0.5}, {3}), Tensor::from_vector<double>({0.5, 1, -1}, {3}),
             Tensor::from_vector<double>({0.25, -0.5, 2}, {3}), Tensor::zeros({3}, DType::f64),
             Tensor::zeros({ieu::kScalars}, DType::f64)};
  o.set(0.1, 0.5, 0.1, 0);  // decay factor 0.99
  const IeuConfig config{0.9, kCap, 0};
  // g = g_r − 0.5·g_f = (0.375, 1.25, −2); v = g; θ = 0.99·θ − 0.1·v.
  fused(o, Tensor::scalar(1.0, DType::f64), config);
  const std::vector<std::vector<double>> expected_theta = {
      {0.9525, -2.105, 0.695}, {0.871725, -2.32145, 1.06805}, {0.74888275, -2.6119855, 1.4993695}};
  test::expect_close(o.params, expected_theta[0], 1e-14, 0);
  test::expect_close(o.momentum, {0.375, 1.25, -2}, 1e-14, 0);
  // v = 0.9·v + g = 1.9·g.
  fused(o, Tensor::scalar(1.0, DType::f64), config);
  test::expect_close(o.params, expected_theta[1], 1e-14, 0);
  test::expect_close(o.momentum, {0.7125, 2.375, -3.8}, 1e-14, 0);
  // Forget loss 3 ≥ the cap 2: α_eff = 0, so g = g_r; v = 0.9·v + g_r.
  fused(o, Tensor::scalar(3.0, DType::f64), config);
  test::expect_close(o.params, expected_theta[2], 1e-14, 0);
  test::expect_close(o.momentum, {1.14125, 3.1375, -4.42}, 1e-14, 0);
  CHECK(o.scalar(ieu::kStep) == 3);
  CHECK(o.scalar(ieu::kAlphaEffective) == 0);
  CHECK(o.scalar(ieu::kAlpha) == 0.5);
}

TEST_CASE("ieu: the fused update does not depend on the thread count") {
  const int threads = num_threads();
  std::vector<Operands> results;
  for (const int t : {1, 2}) {
    set_num_threads(t);
    Operands o = make_operands(5 * cpu::kGrain + 7, DType::f32, true, true);
    for (int s = 0; s < 2; ++s) {
      o.set(lr_of_step(s), 0.5, 0.01, 0.05);
      fused(o, forget_loss(Gate::open, DType::f32), {0.9, kCap, 5});
    }
    results.push_back(o);
  }
  set_num_threads(threads);
  check_same(results[0], results[1]);
}

TEST_CASE("ieu: bad operands and settings throw lethe::Error and change nothing") {
  const int64_t n = 10;
  const IeuConfig plain{}, with_momentum{0.9, INFINITY, 0};
  Operands o = make_operands(n, DType::f32, true, false);
  o.set(0.1, 0.5, 0, 0);
  const Operands before = o.clone();
  // `message` follows the op's name: "ieu_update: " or "ieu_update_reference: ".
  auto rejects = [&](const Operands& bad, const Tensor& loss, const IeuConfig& c, const std::string& message) {
    CHECK_THROWS_WITH_AS(fused(bad, loss, c), doctest::Contains(("ieu_update: " + message).c_str()), Error);
    CHECK_THROWS_WITH_AS(reference(bad, loss, c), doctest::Contains(("ieu_update_reference: " + message).c_str()),
                         Error);
    check_same(o, before);
  };
  Operands bad = o;
  bad.grad_retain = Tensor::zeros({n + 1});
  rejects(bad, {}, plain, "grad_retain is float32[11] on cpu, expected a contiguous float32[10] on cpu");
  bad = o;
  bad.grad_forget = o.grad_forget.to(DType::f64);
  rejects(bad, {}, plain, "grad_forget is float64[10] on cpu, expected a contiguous float32[10]");
  rejects(o, {}, with_momentum, "momentum is undefined, expected a contiguous float32[10]");
  bad = o;
  bad.momentum = Tensor::zeros({n});
  rejects(bad, {}, plain, "a momentum buffer was given, but momentum is 0");
  bad = o;
  bad.params = Tensor::zeros({n}, DType::i32);
  rejects(bad, {}, plain, "params must be a contiguous floating tensor, got int32[10] on cpu");
  bad = o;
  bad.scalars = Tensor::zeros({ieu::kScalars});
  rejects(bad, {}, plain, "scalars is float32[6] on cpu, expected float64[6] on cpu");
  rejects(o, Tensor::zeros({2}), plain, "forget_loss is float32[2] on cpu, expected one float32 or float64");
  rejects(o, {}, {-0.5, INFINITY, 0}, "momentum must be finite and non-negative, got -0.5");
  rejects(o, {}, {0, NAN, 0}, "the forget-loss cap is NaN");
  CHECK(o.scalar(ieu::kStep) == 0);

  auto arena = make_arena(DType::f32);
  CHECK_THROWS_WITH_AS(unlearn::IeuUpdate(*arena, {-1, INFINITY, 0}),
                       doctest::Contains("ieu: momentum must be finite and non-negative, got -1"), Error);
  CHECK_THROWS_WITH_AS(unlearn::IeuUpdate(ParamArena(), {}),
                       doctest::Contains("ieu: the arena holds no parameter elements"), Error);
  unlearn::IeuUpdate update(*arena, {});
  CHECK_THROWS_WITH_AS(update.step(0, 1), doctest::Contains("ieu: set() the learning rate"), Error);
  CHECK_THROWS_WITH_AS(update.set(-1, 0.5, 0, 0),
                       doctest::Contains("ieu: learning rate must be finite and non-negative, got -1"), Error);
  CHECK_THROWS_WITH_AS(update.set(0.1, NAN, 0, 0), doctest::Contains("ieu: alpha must be finite, got nan"), Error);
  CHECK_THROWS_WITH_AS(update.set(0.1, 0.5, -1, 0), doctest::Contains("ieu: weight decay must be finite"), Error);
  CHECK_THROWS_WITH_AS(update.set(0.1, 0.5, 0, -0.1), doctest::Contains("ieu: sigma must be finite"), Error);
  update.set(0.1, 0.5, 0, 0);
  CHECK_THROWS_WITH_AS(update.step(0, 2), doctest::Contains("arena: no gradient buffer 2"), Error);
  CHECK_THROWS_WITH_AS(update.step(0, 1, Tensor::ones({1, 1})),
                       doctest::Contains("ieu_update: forget_loss is float32[1,1] on cpu"), Error);
  CHECK(update.steps() == 0);
  CHECK(values(update.state().back().second)[ieu::kStep] == 0);
}

TEST_CASE("ieu: state round trip continues bit-exactly, load_state rejects bad state") {
  const unlearn::IeuOptions options{0.9, kCap, 21};
  auto run_steps = [](const ParamArena& arena, unlearn::IeuUpdate& u, int from, int to) {
    for (int s = from; s < to; ++s) {
      u.set(lr_of_step(s), 0.5, 0.01, 0.02);
      u.step(0, 1, forget_loss(s % 3 ? Gate::open : Gate::closed, arena.data().dtype()));
    }
  };
  auto arena_a = make_arena(DType::f32);
  unlearn::IeuUpdate a(*arena_a, options);
  run_steps(*arena_a, a, 0, 6);
  auto arena_b = make_arena(DType::f32);
  unlearn::IeuUpdate b(*arena_b, options);
  run_steps(*arena_b, b, 0, 3);
  const NamedList saved = cloned(b.state());
  const Tensor saved_params = arena_b->data().clone();
  auto arena_c = make_arena(DType::f32);
  unlearn::IeuUpdate c(*arena_c, options);
  Tensor(arena_c->data()).copy_(saved_params);
  c.load_state(saved);
  CHECK(c.steps() == 3);
  run_steps(*arena_c, c, 3, 6);
  CHECK(bitwise_equal(arena_c->data(), arena_a->data()));
  const NamedList sa = a.state(), sc = c.state();
  for (size_t i = 0; i < sa.size(); ++i) CHECK(bitwise_equal(sa[i].second, sc[i].second));

  auto with_scalars = [&](std::vector<double> s) {
    return NamedList{{"momentum_buffer", saved[0].second}, {"scalars", Tensor::from_vector(s, {ieu::kScalars})}};
  };
  const std::vector<double> good = values(saved[1].second);
  auto rejects = [&](const NamedList& state, const char* message) {
    CHECK_THROWS_WITH_AS(c.load_state(state), doctest::Contains(message), Error);
    CHECK(c.steps() == 6);
    CHECK(bitwise_equal(c.state()[1].second, sa[1].second));
  };
  rejects({{"scalars", saved[1].second}},
          "ieu load_state: expected the tensors momentum_buffer, scalars, got scalars");
  rejects({{"momentum", saved[0].second}, {"scalars", saved[1].second}}, "ieu load_state: missing 'momentum_buffer'");
  rejects({{"momentum_buffer", Tensor::zeros({5})}, {"scalars", saved[1].second}},
          "ieu load_state: 'momentum_buffer' is float32[5] on cpu");
  std::vector<double> s = good;
  s[ieu::kLr] = -1;
  rejects(with_scalars(s), "ieu load_state: learning rate must be finite and non-negative, got -1");
  s = good;
  s[ieu::kStep] = 1.5;
  rejects(with_scalars(s), "ieu load_state: the saved step count is 1.5");
  s = good;
  s[ieu::kSigma] = INFINITY;
  rejects(with_scalars(s), "ieu load_state: sigma must be finite and non-negative, got inf");
}

TEST_CASE("ieu: CPU/CUDA parity of the fused update, bit for bit, with the gate and noise") {
  if (!test::cuda_or_skip("IEU update CPU/CUDA parity")) return;
  const Device cuda = Device::cuda();
  for (const DType dtype : {DType::f32, DType::f64}) {
    INFO(dtype_name(dtype));
    // An arena through IeuUpdate: the device counter advances with every step, and the gate
    // reads the device-resident forget loss.
    auto cpu_arena = make_arena(dtype), gpu_arena = make_arena(dtype, cuda);
    Tensor(gpu_arena->data()).copy_(cpu_arena->data());
    for (int k = 0; k < 2; ++k) Tensor(gpu_arena->grad(k)).copy_(cpu_arena->grad(k));
    unlearn::IeuUpdate cpu_update(*cpu_arena, {0.9, kCap, 13}), gpu_update(*gpu_arena, {0.9, kCap, 13});
    for (int s = 0; s < 5; ++s) {
      const Gate gate = s % 2 ? Gate::closed : Gate::open;
      cpu_update.set(lr_of_step(s), 0.5, 0.01, 0.05);
      gpu_update.set(lr_of_step(s), 0.5, 0.01, 0.05);
      cpu_update.step(0, 1, forget_loss(gate, dtype));
      gpu_update.step(0, 1, forget_loss(gate, dtype, cuda));
      const std::vector<double> scalars = values(gpu_update.state().back().second);
      CHECK(scalars[ieu::kStep] == s + 1);
      CHECK(scalars[ieu::kAlphaEffective] == (gate == Gate::open ? 0.5 : 0));
    }
    CHECK(gpu_arena->data().is_cuda());
    CHECK(bitwise_equal(gpu_arena->data(), cpu_arena->data()));
    const NamedList cs = cpu_update.state(), gs = gpu_update.state();
    for (size_t i = 0; i < cs.size(); ++i) CHECK(bitwise_equal(gs[i].second, cs[i].second));
    // Raw operands of odd length at an odd offset: the kernel's unaligned, bounds-checked path.
    for (const bool forget : {false, true}) {
      INFO("raw, forget gradient ", forget);
      const Operands host = make_operands(kOddN + 1, dtype, forget, true);
      auto shifted = [](const Tensor& t, Device d) {
        return t.defined() ? t.to(d).narrow(0, 1, t.numel() - 1) : Tensor();
      };
      Operands c{shifted(host.params, Device::cpu()), shifted(host.grad_retain, Device::cpu()),
                 shifted(host.grad_forget, Device::cpu()), shifted(host.momentum, Device::cpu()),
                 Tensor::zeros({ieu::kScalars}, DType::f64)};
      Operands g{shifted(host.params, cuda), shifted(host.grad_retain, cuda), shifted(host.grad_forget, cuda),
                 shifted(host.momentum, cuda), Tensor::zeros({ieu::kScalars}, DType::f64, cuda)};
      for (int s = 0; s < 3; ++s) {
        c.set(lr_of_step(s), 0.5, 0.01, 0.05);
        g.set(lr_of_step(s), 0.5, 0.01, 0.05);
        fused(c, forget_loss(Gate::open, dtype), {0.9, kCap, 17});
        fused(g, forget_loss(Gate::open, dtype, cuda), {0.9, kCap, 17});
      }
      check_same(c, g);
    }
  }
}
