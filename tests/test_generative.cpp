// The generators of workload W5 (nn/generative.h, issue 17): PyTorch's parameter names and counts,
// cvae's negative ELBO on a case computed by hand, the diffusion schedule, forward process,
// denoising step and loss against float64 loops, gradients against central differences, and
// sampling that depends on the seed and labels only.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "harness.h"
#include "nn/generative.h"
#include "nn/models.h"

using namespace lethe;
using namespace lethe::nn;

namespace {

ModelSpec generator_spec(const std::string& name, int64_t size = 28, DType dtype = DType::f64) {
  ModelSpec s;
  s.name = name;
  s.image_size = size;
  s.dtype = dtype;
  return s;
}

// A handle of the parameter (named_parameters() is a fresh list: no reference into it).
Tensor parameter(Model& m, const std::string& name) {
  for (const auto& [n, t] : m.net().named_parameters())
    if (n == name) return t;
  FAIL("no parameter " << name);
  return Tensor();
}

void zero_all(Model& m) {
  NoGradGuard no_grad;
  for (auto& [n, t] : m.net().named_parameters()) t.fill_(0);
}

void set(Model& m, const std::string& name, const std::vector<double>& values) {
  NoGradGuard no_grad;
  Tensor p = parameter(m, name);
  p.copy_(Tensor::from_vector(values, p.shape()).to(p.dtype()));
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  const Tensor ca = a.detach().contiguous(), cb = b.detach().contiguous();
  return ca.dtype() == cb.dtype() && ca.shape() == cb.shape() && std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0;
}

Tensor pixels(int64_t n, int64_t size, uint64_t seed) { return Tensor::rand({n, 1, size, size}, seed, 0, DType::f64); }

Tensor labels(const std::vector<int64_t>& v) { return Tensor::from_vector(v, {static_cast<int64_t>(v.size())}); }

double softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }

// Central differences of sum(loss) at a few entries of every parameter against autograd.
void check_gradients(Model& m, const std::function<Tensor()>& loss) {
  sum(loss()).backward();
  for (auto& [name, p] : m.net().named_parameters()) {
    const std::string parameter = name;  // clang 14 captures no structured binding (INFO's lambda)
    const std::vector<double> grad = p.grad().to_vector<double>();
    for (int64_t k : {int64_t{0}, p.numel() / 2, p.numel() - 1}) {
      NoGradGuard no_grad;
      const double h = 1e-6;
      const Tensor flat = p.view({p.numel()});
      const double was = flat.narrow(0, k, 1).item();
      flat.narrow(0, k, 1).fill_(was + h);
      const double up = sum(loss()).item();
      flat.narrow(0, k, 1).fill_(was - h);
      const double down = sum(loss()).item();
      flat.narrow(0, k, 1).fill_(was);
      const double numeric = (up - down) / (2 * h);
      INFO(parameter << "[" << k << "]: autograd " << grad[static_cast<size_t>(k)] << ", central difference " << numeric);
      CHECK(std::abs(grad[static_cast<size_t>(k)] - numeric) <= 1e-5 * std::abs(numeric) + 1e-6);
    }
  }
}

}  // namespace

TEST_CASE("generators: state-dict names, shapes and parameter counts are those of the PyTorch modules") {
  // bench/torch_generative.py --names, the same modules written in PyTorch.
  Model cvae(generator_spec("cvae", 28, DType::f32), 0, Device::cpu());
  const std::vector<std::pair<std::string, Shape>> expected = {
      {"encoder_label.weight", {10, 784}}, {"enc_conv1.weight", {32, 2, 4, 4}}, {"enc_conv1.bias", {32}},
      {"enc_conv2.weight", {64, 32, 4, 4}}, {"enc_conv2.bias", {64}}, {"fc_mu.weight", {16, 3136}},
      {"fc_mu.bias", {16}}, {"fc_logvar.weight", {16, 3136}}, {"fc_logvar.bias", {16}},
      {"decoder_label.weight", {10, 16}}, {"dec_fc.weight", {3136, 32}}, {"dec_fc.bias", {3136}},
      {"dec_conv1.weight", {32, 64, 3, 3}}, {"dec_conv1.bias", {32}}, {"dec_conv2.weight", {1, 32, 3, 3}},
      {"dec_conv2.bias", {1}}};
  const NamedTensors state = cvae.net().state_dict();
  REQUIRE(state.size() == expected.size());
  for (size_t i = 0; i < state.size(); ++i) {
    CHECK(state[i].first == expected[i].first);
    CHECK(state[i].second.shape() == expected[i].second);
  }
  CHECK(cvae.net().parameter_count() == 264513);

  Model ddpm(generator_spec("ddpm-s", 28, DType::f32), 0, Device::cpu());
  CHECK(ddpm.net().parameter_count() == 365825);
  const NamedTensors d = ddpm.net().state_dict();
  REQUIRE(d.size() == 67);
  CHECK(d.front().first == "time_mlp.0.weight");
  CHECK(d[4].first == "class_embedding.weight");
  CHECK(d.back().first == "conv_out.bias");
  int skips = 0;
  for (const auto& [name, t] : d) skips += name.find(".skip.weight") != std::string::npos;
  CHECK(skips == 3);  // down2, up2, up1: where the width changes
}

TEST_CASE("cvae: the negative ELBO of a hand-computable model") {
  // Every weight 0: μ and log σ² are fc_mu's and fc_logvar's biases, whatever the image; the
  // decoder gives the logit b = dec_conv2.bias at every pixel, whatever z. So per image
  // −ELBO = Σ_pixels (softplus(b) − b·x) + Σ_j −½(1 + c_j − m_j² − e^{c_j}).
  Model m(generator_spec("cvae"), 1, Device::cpu());
  zero_all(m);
  std::vector<double> mu, logvar;
  for (int j = 0; j < 16; ++j) {
    mu.push_back(0.1 * j - 0.7);
    logvar.push_back(0.05 * j - 0.4);
  }
  const double b = -0.3;
  set(m, "fc_mu.bias", mu);
  set(m, "fc_logvar.bias", logvar);
  set(m, "dec_conv2.bias", {b});
  const Tensor x = pixels(3, 28, 7);
  const Tensor loss = m.generator()->loss(x, labels({0, 4, 9}), 11, 2);
  REQUIRE(loss.shape() == Shape{3});
  double kl = 0;
  for (int j = 0; j < 16; ++j) kl += -0.5 * (1 + logvar[j] - mu[j] * mu[j] - std::exp(logvar[j]));
  const std::vector<double> xv = x.to_vector<double>(), got = loss.to_vector<double>();
  for (int i = 0; i < 3; ++i) {
    double reconstruction = 0;
    for (int p = 0; p < 784; ++p) reconstruction += softplus(b) - b * xv[static_cast<size_t>(i * 784 + p)];
    CHECK(got[static_cast<size_t>(i)] == doctest::Approx(reconstruction + kl).epsilon(1e-12));
  }
}

TEST_CASE("ddpm-s: schedule, forward process, denoising step and loss against float64 loops") {
  const DiffusionSchedule& s = ddpm_schedule();
  REQUIRE(s.steps() == 200);
  long double product = 1;
  for (int t = 0; t < 200; ++t) {
    const long double beta = 5e-4L + (0.1L - 5e-4L) * t / 199;
    product *= 1 - beta;
    CHECK(s.beta[t] == doctest::Approx(static_cast<double>(beta)).epsilon(1e-14));
    CHECK(s.alpha_bar[t] == doctest::Approx(static_cast<double>(product)).epsilon(1e-12));
  }
  CHECK(s.alpha_bar.back() < 1e-4);  // x_T is noise

  const std::vector<double> f = time_features(3);
  CHECK(f[0] == doctest::Approx(std::sin(3.0)));
  CHECK(f[16] == doctest::Approx(std::cos(3.0)));
  CHECK(f[5] == doctest::Approx(std::sin(3 * std::pow(10000.0, -5 / 16.0))));

  const Tensor x0 = Tensor::randn({2, 1, 3, 3}, 1, 0, DType::f64), eps = Tensor::randn({2, 1, 3, 3}, 2, 0, DType::f64);
  const std::vector<int64_t> t{17, 150};
  const std::vector<double> xt = diffuse(x0, t, eps).to_vector<double>(), xv = x0.to_vector<double>(),
                            ev = eps.to_vector<double>();
  for (size_t i = 0; i < xt.size(); ++i) {
    const double ab = s.alpha_bar[static_cast<size_t>(t[i / 9])];
    CHECK(xt[i] == doctest::Approx(std::sqrt(ab) * xv[i] + std::sqrt(1 - ab) * ev[i]).epsilon(1e-14));
  }

  const Tensor z = Tensor::randn({2, 1, 3, 3}, 3, 0, DType::f64);
  const std::vector<double> step = denoising_step(x0, eps, 40, z).to_vector<double>(), zv = z.to_vector<double>(),
                            last = denoising_step(x0, eps, 0, Tensor()).to_vector<double>();
  for (size_t i = 0; i < step.size(); ++i) {
    const double mean = (xv[i] - s.beta[40] / std::sqrt(1 - s.alpha_bar[40]) * ev[i]) / std::sqrt(s.alpha[40]);
    CHECK(step[i] == doctest::Approx(mean + std::sqrt(s.beta[40]) * zv[i]).epsilon(1e-14));
    CHECK(last[i] == doctest::Approx((xv[i] - s.beta[0] / std::sqrt(1 - s.alpha_bar[0]) * ev[i]) / std::sqrt(s.alpha[0]))
                         .epsilon(1e-14));
  }
  CHECK_THROWS_WITH_AS(denoising_step(x0, eps, 40, Tensor()), doctest::Contains("needs noise z"), Error);
  CHECK_THROWS_WITH_AS(diffuse(x0, {17, 200}, eps), doctest::Contains("step 200"), Error);

  // Every weight 0 but conv_out's bias b: ε̂ = b everywhere, so the loss is the mean of (b − ε)²
  // over the noise the loss drew (stream 1 of its draws).
  Model m(generator_spec("ddpm-s", 8), 1, Device::cpu());
  zero_all(m);
  set(m, "conv_out.bias", {0.25});
  const Tensor images = pixels(3, 8, 4);
  const std::vector<double> got = m.generator()->loss(images, labels({1, 2, 3}), 9, 5).to_vector<double>();
  const std::vector<double> drawn = Tensor::randn(images.shape(), 9, substream(5, 1), DType::f64).to_vector<double>();
  for (int i = 0; i < 3; ++i) {
    double expected = 0;
    for (int p = 0; p < 64; ++p) expected += std::pow(0.25 - drawn[static_cast<size_t>(i * 64 + p)], 2) / 64;
    CHECK(got[static_cast<size_t>(i)] == doctest::Approx(expected).epsilon(1e-12));
  }
}

TEST_CASE("generators: gradients of the per-image loss against central differences (float64)") {
  for (const char* name : {"cvae", "ddpm-s"}) {
    CAPTURE(name);
    Model m(generator_spec(name, 8), 3, Device::cpu());
    const Tensor x = pixels(2, 8, 5), y = labels({3, 8});
    check_gradients(m, [&] { return m.generator()->loss(x, y, 21, 4); });
  }
}

TEST_CASE("generators: samples depend on the seed and the labels only") {
  for (const char* name : {"cvae", "ddpm-s"}) {
    CAPTURE(name);
    Model m(generator_spec(name, 8, DType::f32), 2, Device::cpu());
    const std::vector<int64_t> few{0, 3, 3, 9};
    const Tensor a = generate(m, few, 5), b = generate(m, few, 5), c = generate(m, few, 6);
    CHECK(a.shape() == Shape{4, 1, 8, 8});
    CHECK(bitwise_equal(a, b));
    CHECK_FALSE(bitwise_equal(a, c));
    const std::vector<double> v = a.to(DType::f64).to_vector<double>();
    for (double p : v) CHECK((p >= 0 && p <= 1));
  }
  // Chunks are drawn by position: the first kSampleChunk images of a longer run are the same.
  Model m(generator_spec("cvae", 8, DType::f32), 2, Device::cpu());
  const std::vector<int64_t> many(kSampleChunk + 7, 4);
  const std::vector<int64_t> first(many.begin(), many.begin() + kSampleChunk);
  CHECK(bitwise_equal(generate(m, many, 1).narrow(0, 0, kSampleChunk), generate(m, first, 1)));
}

TEST_CASE("generators: errors name the problem") {
  Model cvae(generator_spec("cvae", 8), 0, Device::cpu());
  CHECK_THROWS_WITH_AS(cvae.forward(pixels(1, 8, 0)), doctest::Contains("a generator has no forward"), Error);
  CHECK_THROWS_WITH_AS(generate(cvae, {10}, 0), doctest::Contains("class 10 is not one of the model's 10 classes"), Error);
  CHECK_THROWS_WITH_AS(cvae.generator()->loss(pixels(2, 28, 0), labels({1, 2}), 0, 0),
                       doctest::Contains("expects images [N,1,8,8]"), Error);
  Model classifier(generator_spec("cnn-s", 28, DType::f32), 0, Device::cpu());
  CHECK(classifier.generator() == nullptr);
  CHECK_THROWS_WITH_AS(generate(classifier, {1}, 0), doctest::Contains("is a classifier"), Error);
  CHECK_THROWS_WITH_AS(Model(generator_spec("cvae", 30), 0, Device::cpu()), doctest::Contains("divisible by 4"), Error);
}
