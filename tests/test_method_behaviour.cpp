// What five methods do, each against a derivation written here (the reproducibility test alone would
// pass with any of them wrong): RL's labels are always wrong and uniform over the other classes; a
// NegGrad+ step descends β·CE(retain) − (1 − β)·CE(forget); l1-sparse's coefficient decays linearly
// from γ; SCRUB's max steps ascend T²·KL(teacher ‖ student) on forget batches and its min steps
// descend γ·CE + α·KL on retain batches; retrain never reads a forget sample.
// The reference gradients start from the logits' gradient derived by hand in float64 (softmax −
// one-hot for the cross-entropy, the KLs' below); lethe's autograd takes it back to the parameters.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "nn/train.h"
#include "unlearn_fixture.h"

using namespace lethe;
using namespace lethe::unlearn;
using namespace lethe::test;

namespace {

using Vec = std::vector<double>;

// The parameters in named order, as float64: a method's trajectory and the references below.
Vec flat(const NamedTensors& params) {
  Vec out;
  for (const auto& [name, p] : params) {
    const Vec v = p.detach().to(DType::f64).to_vector<double>();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

void set_flat(nn::Model& m, const Vec& theta) {
  NoGradGuard no_grad;
  auto at = theta.begin();
  for (const auto& [name, p] : m.net().named_parameters()) {
    Tensor slice = p;
    slice.copy_(Tensor::from_vector(Vec(at, at + p.numel()), p.shape()));
    at += p.numel();
  }
}

// The parameters before a method's first step, then after each.
std::vector<Vec> trajectory(const std::string& method, const MethodOptions& options, const MethodCase& c) {
  std::vector<Vec> steps;
  run_method(method, options, c, [&](int64_t, int64_t, const NamedTensors& params) { steps.push_back(flat(params)); });
  return steps;
}

// Steps of plain SGD (no momentum, no weight decay) on batches as large as the whole retain (120)
// and forget (40) sets: every step is θ − lr·∇(the loss over whole sets), which the tests compute.
MethodOptions plain(int64_t steps) {
  MethodOptions o;
  o.steps = steps;
  o.batch = 128;
  o.lr = 0.1;
  o.momentum = 0;
  o.weight_decay = 0;
  return o;
}

// Every sample of a subset, in order, normalised as the methods' batches are.
data::Batch whole(const data::Subset& subset) {
  return data::evaluation_loader(subset, subset.size(), data::fashion_mnist_normalization()).batch(0, 0);
}

Vec logits_of(nn::Model& m, const Tensor& images) {
  NoGradGuard no_grad;
  return m.forward(images).to(DType::f64).to_vector<double>();
}

// Row-wise softmax(z / t).
Vec softmax_rows(const Vec& z, double t = 1) {
  Vec p(z.size());
  for (size_t row = 0; row < z.size(); row += kClasses) {
    const double top = *std::max_element(z.begin() + row, z.begin() + row + kClasses);
    double total = 0;
    for (size_t k = row; k < row + kClasses; ++k) total += p[k] = std::exp((z[k] - top) / t);
    for (size_t k = row; k < row + kClasses; ++k) p[k] /= total;
  }
  return p;
}

// ∂ mean CE / ∂ logits = (softmax − one-hot) / n.
Vec cross_entropy_logit_grad(const Vec& z, const Tensor& labels) {
  Vec g = softmax_rows(z);
  const std::vector<int64_t> y = labels.to_vector<int64_t>();
  for (size_t i = 0; i < y.size(); ++i) g[i * kClasses + static_cast<size_t>(y[i])] -= 1;
  for (double& v : g) v /= static_cast<double>(y.size());
  return g;
}

enum class Kl { teacher_student, student_teacher };

// ∂/∂(student logits) of T²/n · Σ_rows KL at temperature T, with p = softmax(student / T) and
// q = softmax(teacher / T):
//   KL(q ‖ p): T²/n · (p − q) / T;
//   KL(p ‖ q): T²/n · p_k·(log p_k − log q_k − KL(p ‖ q)) / T.
Vec kl_logit_grad(const Vec& student, const Vec& teacher, double t, Kl direction) {
  const Vec p = softmax_rows(student, t), q = softmax_rows(teacher, t);
  const double scale = t / static_cast<double>(student.size() / kClasses);
  Vec g(p.size());
  for (size_t row = 0; row < p.size(); row += kClasses) {
    double kl = 0;
    for (size_t k = row; k < row + kClasses; ++k) kl += p[k] * std::log(p[k] / q[k]);
    for (size_t k = row; k < row + kClasses; ++k)
      g[k] = scale * (direction == Kl::teacher_student ? p[k] - q[k] : p[k] * (std::log(p[k] / q[k]) - kl));
  }
  return g;
}

// ∂/∂θ of Σ G ⊙ logits(θ): the parameter gradient of a loss whose gradient in the logits is G.
Vec parameter_gradient(nn::Model& m, const Tensor& images, const Vec& logit_grad) {
  m.arena().zero_grad(0);
  const Tensor logits = m.forward(images);
  sum(mul(logits, Tensor::from_vector(logit_grad, logits.shape()).to(DType::f32))).backward();
  Vec g;
  for (const auto& [name, p] : m.net().named_parameters()) {
    const Vec v = p.grad().to(DType::f64).to_vector<double>();
    g.insert(g.end(), v.begin(), v.end());
  }
  return g;
}

Vec sum_of(double a, const Vec& x, double b, const Vec& y) {
  Vec out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = a * x[i] + b * y[i];
  return out;
}

double norm(const Vec& x) {
  double s = 0;
  for (const double v : x) s += v * v;
  return std::sqrt(s);
}

// A data set of 1×kSize×kSize images.
std::shared_ptr<const data::Dataset> dataset_of(const std::vector<uint8_t>& images, const std::vector<int64_t>& labels) {
  const auto n = static_cast<int64_t>(labels.size());
  return std::make_shared<const data::Dataset>(
      data::Dataset{Tensor::from_vector(images, {n, 1, kSize, kSize}), Tensor::from_vector(labels, {n})});
}

// torch's clip_grad_norm_: scaled by min(1, c / (‖g‖ + 1e-6)); c = 0 is no clipping.
Vec clipped(const Vec& g, double c) {
  const double scale = c > 0 ? std::min(1.0, c / (norm(g) + 1e-6)) : 1.0;
  return sum_of(scale, g, 0, g);
}

double max_diff(const Vec& a, const Vec& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

// How far a predicted step may be from the taken one: float32 forward and backward over the batch
// in another order put the references about 1e-5 of the step off (1e-9 where it is 0).
double tolerance(const Vec& before, const Vec& after) { return 1e-4 * max_diff(before, after) + 1e-8; }

}  // namespace

TEST_CASE("method behaviour: random_other_labels is never the true label and uniform over the others") {
  for (const int64_t classes : {4, 10}) {
    CAPTURE(classes);
    constexpr int64_t n = 3000, steps = 4;
    data::Batch batch;
    std::vector<int64_t> labels(n);
    for (int64_t i = 0; i < n; ++i) {
      labels[static_cast<size_t>(i)] = i % classes;
      batch.indices.push_back(7 * i + 1);
    }
    batch.labels = Tensor::from_vector(labels, {n});
    std::vector<int64_t> drawn(static_cast<size_t>(classes * classes)), previous;
    int64_t true_or_out_of_range = 0, changed = 0;
    for (int64_t step = 0; step < steps; ++step) {
      const std::vector<int64_t> given = random_other_labels(batch, classes, 5, step).to_vector<int64_t>();
      for (size_t i = 0; i < given.size(); ++i) {
        if (given[i] == labels[i] || given[i] < 0 || given[i] >= classes) {
          ++true_or_out_of_range;
          continue;
        }
        ++drawn[static_cast<size_t>(labels[i] * classes + given[i])];
        if (step > 0) changed += given[i] != previous[i];
      }
      previous = given;
    }
    CHECK(true_or_out_of_range == 0);
    // Each wrong class as often as each other, within 5 binomial standard deviations.
    const double expected = static_cast<double>(steps * n / classes) / static_cast<double>(classes - 1);
    for (int64_t truth = 0; truth < classes; ++truth)
      for (int64_t other = 0; other < classes; ++other)
        if (other != truth)
          CHECK(std::abs(drawn[static_cast<size_t>(truth * classes + other)] - expected) < 5 * std::sqrt(expected));
    // A fresh draw every step: a sample keeps its label with probability 1/(classes − 1).
    const double kept = 1 - static_cast<double>(changed) / static_cast<double>((steps - 1) * n);
    CHECK(kept == doctest::Approx(1.0 / static_cast<double>(classes - 1)).epsilon(0.15));
  }
}

TEST_CASE("method behaviour: RL's loss is CE(retain) + CE(forget relabelled with a wrong class)") {
  // The labels RL's loss uses, read back from the loss: with batches of one sample the loss is
  // CE(retain sample) + CE(forget sample, its new label), and of the four labels exactly one fits.
  const MethodCase c = method_case();
  nn::Model m = nn::load_model(c.original, Device::cpu());
  MethodOptions o;
  o.batch = 1;
  MethodRun run{m, c.original, c.train, c.split, data::fashion_mnist_normalization(), o, {}};
  BatchStream retain = run.retain_stream(), forget = run.forget_stream();
  BatchStream retain_seen = run.retain_stream(), forget_seen = run.forget_stream();  // the same batches
  std::map<std::pair<int64_t, int64_t>, int64_t> drawn;  // (true label, label given): times
  std::map<int64_t, std::set<int64_t>> given_to;         // forget sample: the labels it was given
  for (int64_t step = 0; step < 120; ++step) {           // 3 passes over the 40 forget samples
    const double loss = random_label_loss(run, retain, forget, step).item();
    const data::Batch r = retain_seen.next(), f = forget_seen.next();
    const double forget_ce = loss + std::log(softmax_rows(logits_of(m, r.images))[static_cast<size_t>(r.labels.item())]);
    const Vec p = softmax_rows(logits_of(m, f.images));
    std::vector<std::pair<double, int64_t>> fit;  // |CE with label k − the forget CE|, k
    for (int64_t k = 0; k < kClasses; ++k) fit.emplace_back(std::abs(forget_ce + std::log(p[static_cast<size_t>(k)])), k);
    std::sort(fit.begin(), fit.end());
    CAPTURE(step);
    REQUIRE(fit[0].first < 1e-5);  // float32 losses: about 1e-7 off
    REQUIRE(fit[1].first > 1e-4);
    const auto truth = static_cast<int64_t>(f.labels.item());
    CHECK(fit[0].second != truth);
    ++drawn[{truth, fit[0].second}];
    given_to[f.indices[0]].insert(fit[0].second);
  }
  // Every class is relabelled to each of its three others (about 10 times each), and a sample gets
  // other labels at other steps (the same one 3 times in a row: 1 in 9).
  for (int64_t truth = 0; truth < kClasses; ++truth)
    for (int64_t other = 0; other < kClasses; ++other)
      if (other != truth) CHECK(drawn[{truth, other}] >= 4);
  REQUIRE(given_to.size() == 40);
  CHECK(std::count_if(given_to.begin(), given_to.end(), [](const auto& s) { return s.second.size() > 1; }) >= 30);
}

TEST_CASE("method behaviour: a NegGrad+ step descends β·CE(retain) − (1 − β)·CE(forget)") {
  const MethodCase c = method_case();
  nn::Model m = nn::load_model(c.original, Device::cpu());
  const Vec theta = flat(m.net().named_parameters());
  auto gradient_on = [&](const data::Batch& b) {
    return parameter_gradient(m, b.images, cross_entropy_logit_grad(logits_of(m, b.images), b.labels));
  };
  const Vec g_retain = gradient_on(whole(c.retain())), g_forget = gradient_on(whole(c.forget()));
  constexpr double beta = 0.7;  // not the default 0.999, so the forget term is not lost in the tolerance
  const Vec g = sum_of(beta, g_retain, -(1 - beta), g_forget);
  // SGD's default momentum 0.9 and coupled decay λ = 5e-4: the first step is θ − lr·(g + λθ), as
  // torch's momentum buffer starts as the gradient.
  MethodOptions o = plain(1);
  o.momentum = 0.9;
  o.weight_decay = 5e-4;
  o.neggrad_beta = beta;
  for (const double clip : {0.0, norm(g) / 2}) {
    CAPTURE(clip);
    o.ascent_clip = clip;
    const std::vector<Vec> t = trajectory("neggrad+", o, c);
    REQUIRE(t.size() == 2);
    auto step_on = [&](const Vec& gradient) {
      return sum_of(1, theta, -o.lr, sum_of(1, clipped(gradient, clip), o.weight_decay, theta));
    };
    const double tol = tolerance(t[0], t[1]);
    CHECK(t[0] == theta);
    CHECK(max_diff(t[1], step_on(g)) < tol);
    // The forget term ascended with the other sign, or β on the other side, is far off.
    CHECK(max_diff(t[1], step_on(sum_of(beta, g_retain, 1 - beta, g_forget))) > 10 * tol);
    CHECK(max_diff(t[1], step_on(sum_of(1 - beta, g_retain, -beta, g_forget))) > 10 * tol);
  }
}

TEST_CASE("method behaviour: l1-sparse adds γ_t·sign(θ), γ_t linear from γ at the first step") {
  const MethodCase c = method_case();
  MethodOptions o = plain(4);
  o.l1 = 0.05;  // large enough to stand out of the cross-entropy's float32 rounding
  const std::vector<Vec> t = trajectory("l1-sparse", o, c);
  REQUIRE(t.size() == 5);
  const data::Batch retain = whole(c.retain());
  nn::Model m = nn::load_model(c.original, Device::cpu());
  for (size_t step = 0; step < 4; ++step) {
    CAPTURE(step);
    set_flat(m, t[step]);
    const Vec g =
        parameter_gradient(m, retain.images, cross_entropy_logit_grad(logits_of(m, retain.images), retain.labels));
    // θ' = θ − lr·(∇CE + γ_t·sign θ): γ_t is the least-squares fit of what the step took beyond
    // ∇CE, and it must explain every weight's step, biases included.
    Vec beyond(g.size()), sign(g.size());
    double dot = 0, count = 0;
    for (size_t i = 0; i < g.size(); ++i) {
      beyond[i] = (t[step][i] - t[step + 1][i]) / o.lr - g[i];
      sign[i] = (t[step][i] > 0) - (t[step][i] < 0);
      dot += beyond[i] * sign[i];
      count += sign[i] * sign[i];
    }
    const double gamma = dot / count;
    CHECK(gamma == doctest::Approx(0.05 * (1 - static_cast<double>(step) / 4)).epsilon(1e-3));
    CHECK(max_diff(beyond, sum_of(gamma, sign, 0, sign)) < 1e-3 * 0.05);
  }
}

TEST_CASE("method behaviour: SCRUB's max steps ascend T²·KL(teacher ‖ student) on forget, min steps descend γ·CE + α·KL on retain") {
  const MethodCase c = method_case();
  MethodOptions o = plain(6);
  // 2 epochs of 3 steps; the forget set is 40 of the 160 samples, so each epoch begins with
  // round(3·40/160) = 1 max step: M m m, M m m.
  o.scrub_epochs = 2;
  o.scrub_msteps = 2;
  o.scrub_alpha = 0.5;  // not the default 0.001, so the min steps' KL term is not lost in the tolerance
  const double temperature = o.scrub_temperature, gamma = o.scrub_gamma, alpha = o.scrub_alpha;
  const data::Batch retain = whole(c.retain()), forget = whole(c.forget());
  nn::Model teacher = nn::load_model(c.original, Device::cpu()), student = nn::load_model(c.original, Device::cpu());
  const Vec teacher_on_retain = logits_of(teacher, retain.images), teacher_on_forget = logits_of(teacher, forget.images);
  // The reference steps from θ, and their gradients' norms (to show the clip acts).
  auto max_step = [&](const Vec& theta, Kl direction, double clip, double* gradient_norm = nullptr) {
    set_flat(student, theta);
    const Vec z = logits_of(student, forget.images);
    const Vec g = parameter_gradient(student, forget.images, kl_logit_grad(z, teacher_on_forget, temperature, direction));
    if (gradient_norm) *gradient_norm = norm(g);
    return sum_of(1, theta, o.lr, clipped(g, clip));  // ascent
  };
  auto min_step = [&](const Vec& theta, double* gradient_norm = nullptr) {
    set_flat(student, theta);
    const Vec z = logits_of(student, retain.images);
    const Vec g = parameter_gradient(student, retain.images,
                                     sum_of(gamma, cross_entropy_logit_grad(z, retain.labels), alpha,
                                            kl_logit_grad(z, teacher_on_retain, temperature, Kl::teacher_student)));
    if (gradient_norm) *gradient_norm = norm(g);
    return sum_of(1, theta, -o.lr, g);
  };
  // Unclipped, then the max steps clipped to a norm below every step's gradient norm: the min steps
  // must not be clipped.
  constexpr double clip = 0.05;
  for (const double ascent_clip : {0.0, clip}) {
    CAPTURE(ascent_clip);
    o.ascent_clip = ascent_clip;
    const std::vector<Vec> t = trajectory("scrub", o, c);
    REQUIRE(t.size() == 7);
    std::string pattern;
    for (size_t step = 0; step < 6; ++step) {
      const double tol = tolerance(t[step], t[step + 1]);
      double max_norm = 0, min_norm = 0;
      const bool is_max = max_diff(t[step + 1], max_step(t[step], Kl::teacher_student, ascent_clip, &max_norm)) < tol;
      const bool is_min = max_diff(t[step + 1], min_step(t[step], &min_norm)) < tol;
      pattern += is_max == is_min ? '?' : is_max ? 'M' : 'm';
      // At step 0 the student is the teacher: the KL is at its minimum, with no gradient.
      if (step > 0) CHECK((is_max ? max_norm : min_norm) > clip);
    }
    CHECK(pattern == "MmmMmm");
    // The other direction, KL(student ‖ teacher), would have taken another step at step 3 (the
    // student is no longer the teacher then).
    CHECK(max_diff(t[4], max_step(t[3], Kl::student_teacher, ascent_clip)) > 10 * tolerance(t[3], t[4]));
  }
}

TEST_CASE("method behaviour: retrain is training on the retain set alone, from the init seed, never reading a forget sample") {
  const MethodCase clean = method_case();
  // The forget samples poisoned (white images, another label): read once, they would move the weights.
  MethodCase poisoned = clean;
  const std::vector<uint8_t> clean_images = clean.train->images.to_vector<uint8_t>();
  const std::vector<int64_t> clean_labels = clean.train->labels.to_vector<int64_t>();
  std::vector<uint8_t> images = clean_images;
  std::vector<int64_t> labels = clean_labels;
  const int64_t pixels = kSize * kSize;
  for (const int64_t i : clean.split.forget) {
    std::fill_n(images.begin() + i * pixels, pixels, uint8_t{255});
    labels[static_cast<size_t>(i)] = (labels[static_cast<size_t>(i)] + 1) % kClasses;
  }
  poisoned.train = dataset_of(images, labels);
  // The original's weights scrambled: retrain starts from its init seed, not from them.
  for (auto& [name, tensor] : poisoned.original.model_state) tensor = mul(tensor, -3.0);
  const std::vector<float> retrained = run_method("retrain", MethodOptions{}, poisoned).weights;

  // The reference: the original's recipe on a data set of the retain samples alone.
  std::vector<uint8_t> retain_images;
  std::vector<int64_t> retain_labels;
  for (const int64_t i : clean.split.retain) {
    retain_images.insert(retain_images.end(), clean_images.begin() + i * pixels,
                         clean_images.begin() + (i + 1) * pixels);
    retain_labels.push_back(clean_labels[static_cast<size_t>(i)]);
  }
  const auto retain_only = dataset_of(retain_images, retain_labels);
  const nn::CheckpointInfo& info = clean.original.info;
  nn::Model fresh(info.model, info.seed, Device::cpu());
  data::LoaderOptions lo;
  lo.batch_size = info.recipe->batch;
  lo.seed = info.seed;
  lo.normalization = data::fashion_mnist_normalization();
  data::DataLoader loader(data::Subset::all(retain_only), lo);
  nn::Trainer trainer(fresh, *info.recipe, loader);
  for (int64_t epoch = 0; epoch < info.recipe->epochs; ++epoch) trainer.run_epoch(epoch);
  CHECK(retrained == fresh.arena().data().to_vector<float>());
}
