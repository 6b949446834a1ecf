// The fused updates' cases (tests/op_registry.h): sgd_step (plain; momentum with dampening and
// coupled decay on a later step; Nesterov with decoupled decay on the first), adamw_step (first
// and fifth step), clip_grad_norm (clipping over several reduction chunks, and not clipping),
// ieu_update (forget gradient with momentum, the gate open and noise; the gate closed; the retain
// gradient alone with noise over a partial Philox block) and augment_normalize (plain; crops past
// the edges and flips). An in-place op's case returns what it wrote, the updated tensors and then
// its scalars, as one vector in the run's dtype. No gradchecks: these ops record no autograd.
// What does not fit a table (optimizer state, errors, thread counts, arenas, the loader's draws)
// is in tests/test_optim.cpp, tests/test_ieu.cpp and tests/test_loader.cpp.
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/common/philox.h"
#include "kernels/common/reduce.h"
#include "op_registry.h"

using namespace lethe;
using namespace lethe::test;

namespace {

using V = std::vector<Tensor>;

// Any dtype's values (the reference gets images and crops as they are), none for an absent input.
std::vector<double> values(const Tensor& t) {
  return t.defined() ? t.to(DType::f64).to_vector<double>() : std::vector<double>{};
}

// The tensors an op wrote, flattened and joined in `dtype` (undefined ones left out).
Tensor written(const V& parts, DType dtype) {
  V flat;
  for (const Tensor& p : parts)
    if (p.defined()) flat.push_back(p.flatten().to(dtype));
  return concat(flat, 0);
}

// The reference's counterpart of written(): float64 values in the same order.
Tensor joined(const std::vector<std::vector<double>>& parts) {
  std::vector<double> out;
  for (const std::vector<double>& p : parts) out.insert(out.end(), p.begin(), p.end());
  return expected(out, {static_cast<int64_t>(out.size())});
}

// A float64 scalars tensor, kept float64 in every run.
Input scalars(const std::vector<double>& v) {
  std::ostringstream what;
  what << "scalars [";
  for (size_t i = 0; i < v.size(); ++i) what << (i > 0 ? " " : "") << v[i];
  what << "]";
  return made(what.str(), [v] { return Tensor::from_vector(v, {static_cast<int64_t>(v.size())}); }).fixed_dtype();
}

Input zeros(int64_t n) {
  return made("zeros [" + std::to_string(n) + "]", [n] { return Tensor::zeros({n}, DType::f64); });
}

// float64 forward runs to the last bits; float32 runs as far as a few roundings of each term.
const std::vector<Precision> kUpdatePrecisions = {Precision{}, Precision{DType::f32, 1e-5, 1e-6}};

// ---- sgd_step

Tensor sgd_reference(const V& t, const SgdConfig& c) {
  std::vector<double> theta = values(t[0]), v = values(t[2]), s = values(t[3]);
  const std::vector<double> grad = values(t[1]);
  s[optim::kStep] += 1;
  const double lr = s[optim::kLr];
  const bool first = s[optim::kStep] == 1, decay = c.weight_decay != 0;
  for (size_t i = 0; i < theta.size(); ++i) {
    double g = grad[i];
    if (decay && c.decoupled_weight_decay) theta[i] *= 1 - lr * c.weight_decay;
    if (decay && !c.decoupled_weight_decay) g += c.weight_decay * theta[i];
    if (c.momentum != 0) {
      v[i] = first ? g : c.momentum * v[i] + (1 - c.dampening) * g;
      g = c.nesterov ? g + c.momentum * v[i] : v[i];
    }
    theta[i] -= lr * g;
  }
  return joined({theta, v, s});
}

OpCase sgd_case(const std::string& variant, const SgdConfig& c, double steps_before) {
  const int64_t n = 37;
  const auto inputs = [&](int64_t size, uint64_t seed) {
    return Inputs{uniform({size}, seed), uniform({size}, seed + 1),
                  c.momentum != 0 ? uniform({size}, seed + 2) : absent("no momentum"), scalars({0.1, steps_before})};
  };
  return {.name = "sgd_step/" + variant,
          .fn = [c](const V& t) {
            sgd_step(t[0], t[1], t[2], t[3], c);
            return written({t[0], t[2], t[3]}, t[0].dtype());
          },
          .forward = ForwardCheck{inputs(n, 1), [c](const V& t) { return sgd_reference(t, c); }, kUpdatePrecisions},
          .parity = ParityCheck{inputs(4099, 11), 1e-6, 1e-7}};
}

// ---- adamw_step

Tensor adamw_reference(const V& t, const AdamWConfig& c) {
  std::vector<double> theta = values(t[0]), m = values(t[2]), v = values(t[3]), s = values(t[4]);
  const std::vector<double> grad = values(t[1]);
  const double step = s[optim::kStep] += 1, lr = s[optim::kLr];
  s[optim::kStepSize] = lr / (1 - std::pow(c.beta1, step));
  s[optim::kBias2Sqrt] = std::sqrt(1 - std::pow(c.beta2, step));
  for (size_t i = 0; i < theta.size(); ++i) {
    theta[i] *= 1 - lr * c.weight_decay;
    m[i] += (1 - c.beta1) * (grad[i] - m[i]);
    v[i] = c.beta2 * v[i] + (1 - c.beta2) * grad[i] * grad[i];
    theta[i] -= s[optim::kStepSize] * m[i] / (std::sqrt(v[i]) / s[optim::kBias2Sqrt] + c.eps);
  }
  return joined({theta, m, v, s});
}

OpCase adamw_case(const std::string& variant, double steps_before) {
  const AdamWConfig c{0.9, 0.999, 1e-8, 0.1};
  const auto inputs = [&](int64_t size, uint64_t seed) {
    const bool first = steps_before == 0;  // the state starts at zero, as an optimizer's does
    return Inputs{uniform({size}, seed), uniform({size}, seed + 1),
                  first ? zeros(size) : uniform({size}, seed + 2, -0.1, 0.1),
                  first ? zeros(size) : uniform({size}, seed + 3, 0, 0.01), scalars({0.01, steps_before, 0, 0})};
  };
  return {.name = "adamw_step/" + variant,
          .fn = [c](const V& t) {
            adamw_step(t[0], t[1], t[2], t[3], t[4], c);
            return written({t[0], t[2], t[3], t[4]}, t[0].dtype());
          },
          .forward = ForwardCheck{inputs(37, 21), [c](const V& t) { return adamw_reference(t, c); },
                                  kUpdatePrecisions},
          .parity = ParityCheck{inputs(4099, 31), 1e-5, 1e-6}};
}

// ---- clip_grad_norm

Tensor clip_reference(const V& t, double max_norm) {
  std::vector<double> g = values(t[0]);
  double sum = 0;
  for (const double x : g) sum += x * x;
  const double norm = std::sqrt(sum), coefficient = max_norm / (norm + 1e-6);
  if (coefficient < 1)
    for (double& x : g) x *= coefficient;
  return joined({g, {norm}});
}

OpCase clip_case(const std::string& variant, double max_norm, int64_t n) {
  return {.name = "clip_grad_norm/" + variant,
          .fn = [max_norm](const V& t) {
            const Tensor norm = clip_grad_norm(t[0], max_norm);
            return written({t[0], norm}, t[0].dtype());
          },
          .forward = ForwardCheck{{uniform({n}, 41)}, [max_norm](const V& t) { return clip_reference(t, max_norm); },
                                  kUpdatePrecisions},
          .parity = ParityCheck{{uniform({n}, 42)}, 1e-6, 1e-7}};
}

// ---- ieu_update

Tensor ieu_reference(const V& t, const IeuConfig& c) {
  std::vector<double> theta = values(t[0]), v = values(t[3]), s = values(t[4]);
  const std::vector<double> g_r = values(t[1]), g_f = values(t[2]), loss = values(t[5]);
  s[ieu::kStep] += 1;
  const bool open = loss.empty() || c.forget_loss_cap == INFINITY || loss[0] < c.forget_loss_cap;
  s[ieu::kAlphaEffective] = open ? s[ieu::kAlpha] : 0;
  const double lr = s[ieu::kLr], alpha = s[ieu::kAlphaEffective], sigma = s[ieu::kSigma];
  const uint64_t stream = kIeuNoiseStream + static_cast<uint64_t>(s[ieu::kStep]);
  for (size_t i = 0; i < theta.size(); ++i) {
    double g = g_f.empty() ? g_r[i] : g_r[i] - alpha * g_f[i];
    if (c.momentum != 0) g = v[i] = c.momentum * v[i] + g;
    theta[i] = theta[i] * (1 - lr * s[ieu::kWeightDecay]) - lr * g;
    if (sigma != 0) theta[i] += sigma * philox::normal(c.seed, stream, i);
  }
  return joined({theta, v, s});
}

struct IeuVariant {
  std::string name;
  IeuConfig config;
  bool forget;
  double forget_loss;  // NaN: no gate (no loss given)
  double sigma;
};

OpCase ieu_case(const IeuVariant& variant) {
  const IeuConfig c = variant.config;
  const auto inputs = [=](int64_t size, uint64_t seed) {
    const double loss = variant.forget_loss;
    return Inputs{uniform({size}, seed), uniform({size}, seed + 1),
                  variant.forget ? uniform({size}, seed + 2) : absent("no forget gradient"),
                  c.momentum != 0 ? uniform({size}, seed + 3) : absent("no momentum"),
                  scalars({0.1, 2, 0.5, 0.05, variant.sigma, 0}),
                  std::isnan(loss) ? absent("no gate") : made("forget loss " + std::to_string(loss), [loss] {
                    return Tensor::scalar(loss, DType::f64);
                  })};
  };
  return {.name = "ieu_update/" + variant.name,
          .fn = [c](const V& t) {
            ieu_update(t[0], t[1], t[2], t[3], t[4], t[5], c);
            return written({t[0], t[3], t[4]}, t[0].dtype());
          },
          .forward = ForwardCheck{inputs(37, 51), [c](const V& t) { return ieu_reference(t, c); },
                                  kUpdatePrecisions},
          // The same bits on both devices (tests/test_ieu.cpp): Philox noise, no contraction.
          .parity = ParityCheck{inputs(4099, 61), 0, 0}};
}

// ---- augment_normalize

const PixelNorm kNorm{{0.5f, 0.25f, 0.125f, 0}, {0.25f, 0.5f, 2.0f, 1}};

// uint8 images [B,C,H,W] whose pixels run through 0..255.
Input images(const Shape& shape, int64_t seed) {
  return made("uint8 images " + shape.str() + " seed " + std::to_string(seed), [shape, seed] {
    std::vector<uint8_t> v(static_cast<size_t>(shape.numel()));
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>((static_cast<int64_t>(i) * 37 + seed * 11) % 256);
    return Tensor::from_vector(v, shape);
  });
}

Tensor augment_reference(const V& t) {
  const std::vector<double> image = values(t[0]), crops = values(t[1]);
  const int64_t B = t[0].size(0), C = t[0].size(1), H = t[0].size(2), W = t[0].size(3);
  std::vector<double> out;
  for (int64_t b = 0; b < B; ++b) {
    const auto crop = [&](int64_t k) { return crops.empty() ? 0 : static_cast<int64_t>(crops[3 * b + k]); };
    const int64_t dy = crop(0), dx = crop(1);
    const bool flip = crop(2) != 0;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) {
          const int64_t sy = y + dy, sx = (flip ? W - 1 - x : x) + dx;
          const bool inside = sy >= 0 && sy < H && sx >= 0 && sx < W;
          const double v = inside ? image[((b * C + c) * H + sy) * W + sx] : 0;
          out.push_back((v / 255 - kNorm.mean[c]) / kNorm.std[c]);
        }
  }
  return expected(out, t[0].shape());
}

OpCase augment_case(const std::string& variant, const Shape& shape, const std::vector<int32_t>& crops) {
  Input crop_input = absent("no crops");
  if (!crops.empty())
    crop_input = made("crops (dy, dx, flip) past the edges, flipped and not", [crops, batch = shape[0]] {
      return Tensor::from_vector(crops, {batch, 3});
    });
  return {.name = "augment_normalize/" + variant,
          .fn = [](const V& t) { return augment_normalize(t[0], t[1], kNorm); },
          .forward = ForwardCheck{{images(shape, 1), crop_input}, augment_reference,
                                  {Precision{DType::f32, 1e-6, 1e-6}}},
          .parity = ParityCheck{{images(shape, 2), crop_input}, 0, 0}};
}

}  // namespace

LETHE_OP_CASES(updates) {
  std::vector<OpCase> cases;
  cases.push_back(sgd_case("plain", {}, 0));
  cases.push_back(sgd_case("momentum-dampening-coupled-decay", {0.9, 0.2, 0.01, false, false}, 3));
  cases.push_back(sgd_case("nesterov-decoupled-decay-first", {0.9, 0, 0.01, true, true}, 0));
  cases.push_back(adamw_case("first", 0));
  cases.push_back(adamw_case("fifth", 4));
  cases.push_back(clip_case("clips", 0.5, 2 * kReduceChunk + 5));
  cases.push_back(clip_case("below-max", 1000, 37));
  cases.push_back(ieu_case({"forget-momentum-open-noise", {0.9, 2, 7}, true, 1.5, 0.05}));
  cases.push_back(ieu_case({"forget-closed", {0, 2, 0}, true, 2.5, 0}));
  cases.push_back(ieu_case({"retain-noise", {0, INFINITY, 9}, false, NAN, 0.1}));
  cases.push_back(augment_case("plain", {2, 3, 5, 6}, {}));
  cases.push_back(augment_case("crop-flip", {4, 3, 5, 6}, {-2, 1, 1, 2, -2, 0, 0, 0, 1, 6, -7, 0}));
  cases.push_back(augment_case("crop-1ch", {2, 1, 4, 4}, {1, 1, 0, -1, 0, 1}));
  return cases;
}
