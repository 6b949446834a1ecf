#pragma once
// Metrics of a class-conditional generator after forgetting a class (issue 17), judged by a fixed
// evaluator classifier (W1's cnn-s):
//  - fidelity: the share of samples conditioned on a class that the evaluator classifies as that
//    class, with a Wilson score interval (the forget class: the forget-accuracy analogue; the
//    retain classes pooled: the retain-accuracy analogue);
//  - a Fréchet distance between Gaussians fitted to the evaluator's penultimate-layer features of
//    samples and of held-out real test images (FID's construction, with this evaluator instead of
//    Inception: the numbers are not FIDs and compare only with each other), per class and over
//    the retain classes;
//  - the generator's per-image loss on forget, retain and test images, and the membership gap
//    (test images of the forget class − forget images).
#include <cstdint>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "nn/data/dataset.h"
#include "nn/models.h"
#include "unlearn/scenario.h"
#include "unlearn/stats.h"

namespace lethe::unlearn {

using stats::Proportion;

// The evaluator's penultimate-layer features (float64 [N, d], on the CPU) and predicted classes of
// images [N,C,H,W] with pixels in [0, 1], normalised first as the evaluator's data (`normalization`).
// The evaluator is a Sequential classifier (mlp, cnn-s): its layers but the last give the features.
struct Judgement {
  Tensor features;
  std::vector<int64_t> predicted;
};
Judgement judge(nn::Model& evaluator, const Tensor& images, const data::Normalization& normalization,
                int64_t batch = 1000);

// Samples of `generator` drawn for `labels` with `seed` (nn::generate), judged: the evaluator's
// judgement and the share it puts in their own label (with its Wilson interval).
struct JudgedSamples {
  Judgement judgement;
  Proportion fidelity;
};
JudgedSamples judge_samples(nn::Model& generator, nn::Model& evaluator, const std::vector<int64_t>& labels,
                            uint64_t seed, const data::Normalization& normalization);

// Mean [d] and covariance [d, d] (divided by N − 1, as numpy.cov) of features [N, d], float64.
struct Gaussian {
  Tensor mean, covariance;
};
Gaussian fit_gaussian(const Tensor& features);
// |μa − μb|² + tr Σa + tr Σb − 2·tr (Σa^½ Σb Σa^½)^½, the square roots by LAPACK (sqrtmh, and the
// eigenvalues of the symmetric product, negative rounding clamped to 0).
double frechet_distance(const Gaussian& a, const Gaussian& b);

struct GeneratorMetricOptions {
  int64_t samples_per_class = 2500;  // a share's 95% interval is then within ±2 points
  int64_t loss_images = 2000;  // images of each set whose loss is measured (evenly spaced; 0: all)
  uint64_t seed = 0;           // of the samples and of the losses' draws
  int64_t batch = 500;
};

struct ClassMetrics {
  int64_t label = 0;
  Proportion fidelity;
  double frechet = 0;  // samples of the class against the test images of the class
};

struct GeneratorMetrics {
  int64_t forget_class = 0;
  std::vector<ClassMetrics> classes;  // every class, in order
  Proportion forget_fidelity, retain_fidelity;  // the retain classes' samples pooled
  double forget_frechet = 0, retain_frechet = 0;  // retain: pooled samples against pooled test images
  // Mean per-image loss (nats for cvae, the denoising error for ddpm-s).
  double forget_loss = 0, retain_loss = 0, test_loss = 0, test_forget_class_loss = 0;
  double membership_gap = 0;  // test_forget_class_loss − forget_loss
  double seconds = 0;
};

// `generator` after forgetting split.scenario's class (a class:C scenario), `train` the training
// set the split indexes, `test` the test set, `normalization` the evaluator's.
GeneratorMetrics generator_metrics(nn::Model& generator, nn::Model& evaluator, const Split& split,
                                   const std::shared_ptr<const data::Dataset>& train,
                                   const std::shared_ptr<const data::Dataset>& test,
                                   const data::Normalization& normalization, const GeneratorMetricOptions& options);
nlohmann::json to_json(const GeneratorMetrics& m);

}  // namespace lethe::unlearn
