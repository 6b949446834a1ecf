#include "unlearn/dynamics.h"

#include <algorithm>
#include <chrono>
#include <limits>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/ops.h"
#include "nn/data/loader.h"
#include "unlearn/convex.h"
#include "unlearn/ieu_update.h"
#include "unlearn/method.h"
#include "unlearn/relearn.h"

namespace lethe::unlearn {

void DynamicsOptions::resolve() {
  if (std::isnan(decay)) decay = l2;
  LETHE_CHECK(std::isfinite(l2) && l2 > 0, "dynamics", "--l2 must be > 0 (it makes the problem strongly convex), got ", l2);
  LETHE_CHECK(std::isfinite(tolerance) && tolerance > 0, "dynamics", "--tolerance must be > 0, got ", tolerance);
  LETHE_CHECK(std::isfinite(lr) && lr > 0, "dynamics", "--lr must be > 0, got ", lr);
  LETHE_CHECK(std::isfinite(alpha) && alpha >= 0, "dynamics", "--alpha must be ≥ 0, got ", alpha);
  LETHE_CHECK(std::isfinite(decay) && decay >= 0, "dynamics", "--decay must be ≥ 0, got ", decay);
  LETHE_CHECK(alpha == 0 || decay > 0, "dynamics", "--alpha ", alpha, " with --decay 0: IEU's objective "
              "CE_retain − α·CE_forget is unbounded below, so it has no fixed point; give a decay > 0");
  LETHE_CHECK(std::isfinite(sigma) && sigma >= 0, "dynamics", "--sigma must be ≥ 0, got ", sigma);
  LETHE_CHECK(!std::isnan(cap) && cap > 0, "dynamics", "--cap must be > 0, got ", cap);
  LETHE_CHECK(steps >= 4, "dynamics", "--steps must be ≥ 4, got ", steps);
  LETHE_CHECK(batch >= 0, "dynamics", "--batch must be ≥ 0, got ", batch);
  LETHE_CHECK(snapshots >= 0 && snapshots <= steps, "dynamics", "--snapshots must be in [0, --steps], got ", snapshots);
  LETHE_CHECK(fit_from >= 0 && fit_from < 1, "dynamics", "the fit window's start must be in [0, 1), got ", fit_from);
}

double fitted_factor(const std::vector<double>& x, const std::vector<double>& y) {
  LETHE_CHECK(x.size() == y.size(), "dynamics", "fit over ", x.size(), " steps and ", y.size(), " values");
  if (x.size() < 2) return std::numeric_limits<double>::quiet_NaN();
  double mx = 0, my = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    mx += x[i];
    my += std::log(y[i]);
  }
  mx /= static_cast<double>(x.size());
  my /= static_cast<double>(x.size());
  double sxy = 0, sxx = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (std::log(y[i]) - my);
    sxx += (x[i] - mx) * (x[i] - mx);
  }
  return std::exp(sxy / sxx);
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// A set's images (in the model's dtype, on its device) and labels, in the set's order, normalised
// as every loader normalises them.
struct Samples {
  Tensor images, labels;
  int64_t size() const { return labels.numel(); }
};

Samples gather(const data::Subset& subset, const data::Normalization& normalization, DType dtype, Device device) {
  data::DataLoader loader = data::evaluation_loader(subset, 4096, normalization, device);
  std::vector<Tensor> images, labels;
  for (int64_t i = 0; i < loader.batches_per_epoch(); ++i) {
    data::Batch b = loader.batch(0, i);
    images.push_back(b.images);
    labels.push_back(b.labels);
  }
  return {concat(images, 0).to(dtype), concat(labels, 0)};
}

// Backward of the set's mean cross-entropy, in chunks, into the bound gradient buffer; returns the
// mean (a float64 scalar on the device, detached).
Tensor accumulate_mean_loss(nn::Model& model, const Samples& s) {
  constexpr int64_t kChunk = 8192;
  CrossEntropyOptions sum;
  sum.reduction = Reduction::sum;
  Tensor total = Tensor::zeros({}, DType::f64, model.device());
  for (int64_t at = 0; at < s.size(); at += kChunk) {
    const int64_t len = std::min(kChunk, s.size() - at);
    const Tensor loss = mul(cross_entropy(model.forward(s.images.narrow(0, at, len)), s.labels.narrow(0, at, len), sum),
                            1.0 / static_cast<double>(s.size()));
    loss.backward();
    total.add_(loss.detach().to(DType::f64));
  }
  return total;
}

// Full-batch g_r into gradient buffer 0 and g_f into buffer 1; returns the forget loss.
Tensor full_batch_gradients(nn::Model& model, const Samples& retain, const Samples& forget) {
  return retain_and_forget_gradients(
      model.arena(), [&] { accumulate_mean_loss(model, retain); }, [&] { return accumulate_mean_loss(model, forget); });
}

std::vector<double> theta_now(const nn::Model& model) { return theta_of(model.net().state_dict()); }

nlohmann::json minimum_json(const Minimum& m) {
  return {{"objective", m.value}, {"gradient_norm", m.gradient_norm}, {"iterations", m.iterations}, {"newton_steps", m.newton_steps},
          {"evaluations", m.evaluations}};
}

double mean_of(const std::vector<double>& v, size_t from) {
  double s = 0;
  for (size_t i = from; i < v.size(); ++i) s += v[i];
  return s / static_cast<double>(v.size() - from);
}

}  // namespace

nlohmann::json run_dynamics(const DynamicsInputs& in) {
  const DynamicsOptions& o = in.options;
  LETHE_CHECK(in.spec.name == "linear", "dynamics", "the convex study needs the linear model (multinomial logistic "
              "regression, convex in its parameters); ", in.spec.name, " is not convex, so no optimum, Hessian bound or "
              "contraction factor of it is exact");
  LETHE_CHECK(!in.split.forget.empty() && !in.split.retain.empty(), "dynamics", "the split needs forget and retain samples");
  auto say = [&](const std::string& phase) {
    if (in.progress) in.progress(phase);
  };
  const DType dtype = in.spec.dtype;
  const int64_t classes = in.spec.classes;
  const data::Subset retain_set{in.train, in.split.retain}, forget_set{in.train, in.split.forget};
  const Samples retain = gather(retain_set, in.normalization, dtype, in.device);
  const Samples forget = gather(forget_set, in.normalization, dtype, in.device);
  const auto nr = static_cast<size_t>(retain.size()), nf = static_cast<size_t>(forget.size());
  // The features the model's affine map sees: the images, average-pooled as its first layer pools them.
  Tensor features = concat({retain.images.to(Device::cpu()), forget.images.to(Device::cpu())}, 0).to(DType::f64);
  if (in.spec.input_pool > 1) {
    const int p = static_cast<int>(in.spec.input_pool);
    features = avg_pool2d(features, {p, p, p, p});
  }
  const SoftmaxData data = softmax_data(features, concat({retain.labels, forget.labels}, 0), classes);
  std::vector<double> all(nr + nf, 1.0 / static_cast<double>(nr + nf)), retain_only(nr + nf, 0.0), ieu(nr + nf);
  std::fill(retain_only.begin(), retain_only.begin() + static_cast<std::ptrdiff_t>(nr), 1.0 / static_cast<double>(nr));
  for (size_t i = 0; i < nr + nf; ++i) ieu[i] = i < nr ? 1.0 / static_cast<double>(nr) : -o.alpha / static_cast<double>(nf);
  const SoftmaxObjective original_f(data, all, o.l2), retain_f(data, retain_only, o.l2), ieu_f(data, ieu, o.decay);

  // 1. Reference points.
  say("reference points (L-BFGS, float64)");
  Clock::time_point t0 = Clock::now();
  const Minimum original = minimize(original_f, std::vector<double>(static_cast<size_t>(data.dim()), 0.0), o.tolerance);
  const Minimum retrained = minimize(retain_f, original.theta, o.tolerance);
  const bool fixed_is_retrained = o.alpha == 0 && o.decay == o.l2;
  const Minimum fixed = fixed_is_retrained ? retrained : minimize(ieu_f, retrained.theta, o.tolerance);
  const double reference_seconds = seconds_since(t0);
  std::vector<double> forget_coefficients(nr + nf, 0.0);
  std::fill(forget_coefficients.begin() + static_cast<std::ptrdiff_t>(nr), forget_coefficients.end(), 1.0 / static_cast<double>(nf));
  const SoftmaxObjective forget_loss_f(data, forget_coefficients, 0);

  // 2. Spectra; refuse a recursion that would not contract before running it.
  say("Hessian spectra (LAPACK dsyevd)");
  t0 = Clock::now();
  const Spectrum retain_spectrum = spectrum(retain_f.hessian(retrained.theta));
  const Spectrum ieu_spectrum = fixed_is_retrained ? retain_spectrum : spectrum(ieu_f.hessian(fixed.theta));
  const double spectrum_seconds = seconds_since(t0);
  const LinearRecursion recursion{ieu_spectrum.eigenvalues, o.lr, o.sigma};
  check_contracts(recursion, "IEU with these settings");
  const double q = recursion.contraction();

  // 3. The runs, from θ*_o: through lethe's model, autograd and fused IEU update.
  say("IEU runs");
  t0 = Clock::now();
  const NamedTensors start = state_of(original.theta, classes, dtype);
  auto make_model = [&] {
    auto m = std::make_unique<nn::Model>(in.spec, o.seed, in.device, 2);
    m->net().load_state_dict(start);
    return m;
  };
  IeuOptions io;
  io.forget_loss_cap = o.cap;
  io.seed = o.seed;
  auto clean = make_model(), noisy = make_model();
  std::unique_ptr<nn::Model> minibatch = o.batch > 0 ? make_model() : nullptr;
  IeuUpdate clean_update(clean->arena(), io), noisy_update(noisy->arena(), io);
  std::unique_ptr<IeuUpdate> minibatch_update =
      minibatch ? std::make_unique<IeuUpdate>(minibatch->arena(), io) : nullptr;
  clean_update.set(o.lr, o.alpha, o.decay, 0);
  noisy_update.set(o.lr, o.alpha, o.decay, o.sigma);
  if (minibatch_update) minibatch_update->set(o.lr, o.alpha, o.decay, o.sigma);
  std::unique_ptr<BatchStream> retain_stream, forget_stream;
  if (minibatch) {
    retain_stream = std::make_unique<BatchStream>(retain_set, o.batch, o.seed, in.normalization, in.device);
    forget_stream = std::make_unique<BatchStream>(forget_set, o.batch, o.seed + 1, in.normalization, in.device);
  }
  std::vector<double> linear(original.theta.size());  // e of the linearised recursion
  for (size_t j = 0; j < linear.size(); ++j) linear[j] = original.theta[j] - fixed.theta[j];
  const double zero_norm = norm(linear);

  std::vector<double> steps, clean_fp, clean_r, noisy_fp, noisy_r, spread, spread_predicted, mb_fp, mb_r, linear_fp,
      clean_forget_loss;
  std::vector<int64_t> snapshot_steps;
  for (int64_t k = 0; k <= o.snapshots; ++k) snapshot_steps.push_back(o.snapshots == 0 ? 0 : k * o.steps / o.snapshots);
  std::vector<NamedTensors> snapshots;
  std::vector<double> snapshot_theta_distance_r, snapshot_theta_distance_fp;
  int64_t open_steps = 0;
  for (int64_t t = 0;; ++t) {
    const std::vector<double> c = theta_now(*clean), n = theta_now(*noisy);
    steps.push_back(static_cast<double>(t));
    clean_fp.push_back(distance(c, fixed.theta));
    clean_r.push_back(distance(c, retrained.theta));
    noisy_fp.push_back(distance(n, fixed.theta));
    noisy_r.push_back(distance(n, retrained.theta));
    spread.push_back(std::pow(distance(n, c), 2));
    spread_predicted.push_back(recursion.spread(t));
    linear_fp.push_back(norm(linear));
    if (minibatch) {
      const std::vector<double> m = theta_now(*minibatch);
      mb_fp.push_back(distance(m, fixed.theta));
      mb_r.push_back(distance(m, retrained.theta));
    }
    if (snapshots.size() < snapshot_steps.size() && snapshot_steps[snapshots.size()] == t) {  // ascending steps
      snapshots.push_back(state_of(n, classes, dtype));
      snapshot_theta_distance_r.push_back(noisy_r.back());
      snapshot_theta_distance_fp.push_back(noisy_fp.back());
    }
    if (t == o.steps) break;
    const Tensor clean_loss = full_batch_gradients(*clean, retain, forget);
    clean_update.step(0, 1, clean_loss);
    const double loss = clean_loss.item();
    LETHE_CHECK(std::isfinite(loss), "dynamics", "the forget loss of the full-batch run is not finite at step ", t + 1);
    clean_forget_loss.push_back(loss);
    if (loss < o.cap) ++open_steps;
    noisy_update.step(0, 1, full_batch_gradients(*noisy, retain, forget));
    if (minibatch) {
      const data::Batch r = retain_stream->next(), f = forget_stream->next();
      const Tensor forget_loss = retain_and_forget_gradients(
          minibatch->arena(), [&] { cross_entropy(minibatch->forward(r.images), r.labels).backward(); },
          [&] {
            Tensor batch_loss = cross_entropy(minibatch->forward(f.images), f.labels);
            batch_loss.backward();
            return batch_loss;
          });
      minibatch_update->step(0, 1, forget_loss.detach());
    }
    const std::vector<double> hv = ieu_f.hessian_vector(fixed.theta, linear);
    for (size_t j = 0; j < linear.size(); ++j) linear[j] -= o.lr * hv[j];
  }
  const double run_seconds = seconds_since(t0);

  // 4. What the runs say against the theory.
  const double floor = 1e3 * (dtype == DType::f64 ? std::numeric_limits<double>::epsilon()
                                                  : static_cast<double>(std::numeric_limits<float>::epsilon())) *
                       std::max(1.0, norm(fixed.theta));
  std::vector<double> fit_x, fit_clean, fit_linear;
  for (size_t i = 0; i < steps.size(); ++i) {
    if (steps[i] < o.fit_from * static_cast<double>(o.steps) || clean_fp[i] <= floor || linear_fp[i] <= 0) continue;
    fit_x.push_back(steps[i]);
    fit_clean.push_back(clean_fp[i]);
    fit_linear.push_back(linear_fp[i]);
  }
  // How far the run is from its linearisation: the relative gap between the two distances to θ_fp,
  // largest over the first half of the steps (far from θ_fp, where the loss's curvature changes
  // along the way) and over the fit window.
  double gap_early = 0, gap_window = 0;
  for (size_t i = 1; i < steps.size(); ++i) {
    const double gap = std::abs(clean_fp[i] - linear_fp[i]) / clean_fp[i];
    if (steps[i] < 0.5 * static_cast<double>(o.steps)) gap_early = std::max(gap_early, gap);
    if (!fit_x.empty() && steps[i] >= fit_x.front() && steps[i] <= fit_x.back()) gap_window = std::max(gap_window, gap);
  }
  const size_t late = steps.size() * 3 / 4;
  const double spread_ratio = o.sigma > 0 ? mean_of(spread, late) / mean_of(spread_predicted, late)
                                          : std::numeric_limits<double>::quiet_NaN();
  nlohmann::json minibatch_json = nullptr;
  if (minibatch) {
    std::vector<double> mb2(mb_fp.size()), expected(mb_fp.size());
    for (size_t i = 0; i < mb_fp.size(); ++i) {
      mb2[i] = mb_fp[i] * mb_fp[i];
      expected[i] = clean_fp[i] * clean_fp[i] + spread_predicted[i];
    }
    minibatch_json = {{"batch", o.batch},
                      {"late_squared_distance_to_fixed_point", mean_of(mb2, late)},
                      {"predicted_without_gradient_noise", mean_of(expected, late)},
                      {"ratio", mean_of(mb2, late) / mean_of(expected, late)},
                      {"final_distance_to_fixed_point", mb_fp.back()},
                      {"final_distance_to_retrained", mb_r.back()}};
  }

  // 5. Relearning from points along the noisy run, and from θ*_r (the retrained model).
  say("relearning (RCD)");
  t0 = Clock::now();
  const RelearnData relearn_set = relearn_data(in.train, in.split, in.relearn);
  nn::Model original_model(in.spec, o.seed, in.device, 1);
  original_model.net().load_state_dict(start);
  const ForgetMetrics original_metrics = forget_metrics(original_model, relearn_set.forget, in.normalization, in.relearn);
  const RelearnTargets targets = relearn_targets(in.relearn, original_metrics);
  std::vector<NamedTensors> starts = snapshots;
  starts.push_back(state_of(retrained.theta, classes, dtype));
  const std::vector<RelearnResult> results =
      relearn(in.spec, starts, relearn_set, in.normalization, in.relearn, targets, in.device, RelearnMode::sequential,
              {}, {}, {starts.size() - 1});
  const double relearn_seconds = seconds_since(t0);
  nlohmann::json rcd = nlohmann::json::array();
  for (size_t i = 0; i < results.size(); ++i) {
    const bool is_retrained = i + 1 == results.size();
    nlohmann::json point = {
        {"start", is_retrained ? "retrained" : "ieu"},
        {"step", is_retrained ? nlohmann::json(nullptr) : nlohmann::json(snapshot_steps[i])},
        {"distance_to_retrained", is_retrained ? 0.0 : snapshot_theta_distance_r[i]},
        {"distance_to_fixed_point", is_retrained ? distance(retrained.theta, fixed.theta) : snapshot_theta_distance_fp[i]},
        {"forget_loss", results[i].curve.empty() ? nlohmann::json(nullptr) : nlohmann::json(results[i].curve.front().forget_loss)},
        {"rcd", rcd_json(results[i], &results.back())}};
    rcd.push_back(point);
  }

  nlohmann::json trajectory = {{"step", steps},
                               {"clean_distance_to_fixed_point", clean_fp},
                               {"clean_distance_to_retrained", clean_r},
                               {"noisy_distance_to_fixed_point", noisy_fp},
                               {"noisy_distance_to_retrained", noisy_r},
                               {"noisy_spread", spread},
                               {"predicted_spread", spread_predicted},
                               {"linearised_distance_to_fixed_point", linear_fp},
                               {"clean_forget_loss", clean_forget_loss}};
  if (minibatch) {
    trajectory["minibatch_distance_to_fixed_point"] = mb_fp;
    trajectory["minibatch_distance_to_retrained"] = mb_r;
  }
  const double forget_loss_at_fixed = forget_loss_f.value(fixed.theta);
  return {
      {"problem",
       {{"model", in.spec.name}, {"dtype", dtype_name(dtype)}, {"input_pool", in.spec.input_pool}, {"parameters", data.dim()},
        {"retain_samples", nr}, {"forget_samples", nf}, {"l2", o.l2}, {"tolerance", o.tolerance}}},
      {"ieu",
       {{"lr", o.lr}, {"alpha", o.alpha}, {"decay", o.decay}, {"sigma", o.sigma},
        {"cap", std::isfinite(o.cap) ? nlohmann::json(o.cap) : nlohmann::json(nullptr)}, {"momentum", 0},
        {"steps", o.steps}, {"seed", o.seed}, {"gate_open_steps", open_steps}}},
      {"reference_points",
       {{"original", minimum_json(original)},
        {"retrained", minimum_json(retrained)},
        {"fixed_point", minimum_json(fixed)},
        {"fixed_point_is_retrained", fixed_is_retrained},
        {"distance_original_to_retrained", distance(original.theta, retrained.theta)},
        {"distance_fixed_point_to_retrained", distance(fixed.theta, retrained.theta)},
        {"forget_loss_at_original", forget_loss_f.value(original.theta)},
        {"forget_loss_at_retrained", forget_loss_f.value(retrained.theta)},
        {"forget_loss_at_fixed_point", forget_loss_at_fixed},
        {"gate_open_at_fixed_point", o.alpha == 0 || forget_loss_at_fixed < o.cap}}},
      {"hessian",
       {{"retain_at_retrained", {{"mu", retain_spectrum.min()}, {"L", retain_spectrum.max()},
                                 {"condition", retain_spectrum.max() / retain_spectrum.min()}}},
        {"ieu_at_fixed_point", {{"min", ieu_spectrum.min()}, {"max", ieu_spectrum.max()}}}}},
      {"predicted",
       {{"contraction_factor", q},
        {"steps_per_e_fold", -1 / std::log(q)},
        {"stationary_spread", o.sigma > 0 ? nlohmann::json(recursion.stationary_spread()) : nlohmann::json(0.0)},
        {"spread_at_last_step", spread_predicted.back()}}},
      {"measured",
       {{"fit_window", fit_x.empty() ? nlohmann::json(nullptr) : nlohmann::json({fit_x.front(), fit_x.back()})},
        {"fit_points", fit_x.size()},
        {"rate_full_batch", fitted_factor(fit_x, fit_clean)},
        {"rate_linearised", fitted_factor(fit_x, fit_linear)},
        {"final_distance_to_fixed_point", clean_fp.back()},
        {"final_linearised_distance", linear_fp.back()},
        {"linearisation_gap_first_half", gap_early},
        {"linearisation_gap_fit_window", gap_window},
        {"start_distance_to_fixed_point", zero_norm},
        {"spread_late", o.sigma > 0 ? nlohmann::json(mean_of(spread, late)) : nlohmann::json(nullptr)},
        {"spread_late_predicted", o.sigma > 0 ? nlohmann::json(mean_of(spread_predicted, late)) : nlohmann::json(nullptr)},
        {"spread_ratio", std::isnan(spread_ratio) ? nlohmann::json(nullptr) : nlohmann::json(spread_ratio)},
        {"minibatch", minibatch_json}}},
      {"relearning", {{"targets", targets}, {"points", rcd}}},
      {"trajectory", trajectory},
      {"seconds",
       {{"reference_points", reference_seconds}, {"spectra", spectrum_seconds}, {"runs", run_seconds},
        {"relearning", relearn_seconds}}}};
}

}  // namespace lethe::unlearn
