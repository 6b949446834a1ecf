#pragma once
// The class-conditional generators of workload W5 (README): `cvae`, a convolutional VAE, and
// `ddpm-s`, a small denoising diffusion model. A generator's training loss is per image, so the
// unlearning methods can ascend it on the forget set and descend it on the retain set as they do
// a classifier's cross-entropy; its samples are what the evaluator classifier judges.
#include <cstdint>
#include <memory>
#include <vector>

#include "nn/module.h"

namespace lethe::nn {

struct ModelSpec;
class Model;

// Random draws of one loss evaluation or one sampling run come from Philox (seed, stream): the
// k-th draw uses stream `substream(stream, k)`, so runs are reproducible and the same on every
// device, and no two calls with different streams share numbers.
constexpr uint64_t kSubstreams = 4096;
inline uint64_t substream(uint64_t stream, uint64_t k) { return stream * kSubstreams + k; }
// The seed of a model's training and evaluation draws: apart from its initialisation's (seed) and
// its loader's, whose streams are small numbers too.
inline uint64_t draw_seed(uint64_t model_seed) { return model_seed ^ 0x9e3779b97f4a7c15ull; }
// The seed of an unlearning method's draws (its --seed), apart from the training draws'.
inline uint64_t unlearning_draw_seed(uint64_t method_seed) { return draw_seed(method_seed) ^ 0x632be59bd9b4e019ull; }

class Generator : public Module {
 public:
  // The per-image loss [N] of images [N,C,H,W] with pixels in [0, 1] and labels [N] (int32/int64):
  // cvae's negative ELBO, ddpm-s's denoising error at a random step. Its draws use `stream`.
  virtual Tensor loss(const Tensor& images, const Tensor& labels, uint64_t seed, uint64_t stream) = 0;
  // Images [N,C,H,W] with pixels in [0, 1], one per label [N], drawn with `stream`.
  virtual Tensor sample(const Tensor& labels, uint64_t seed, uint64_t stream) = 0;
  // A generator maps (images, labels) to a loss, not images to logits.
  Tensor forward(const Tensor& x) override;
};

bool is_generator_name(const std::string& model_name);

// Samples [N,C,H,W] (pixels in [0, 1]) of `model`, a generator, one per label: in eval mode, without
// autograd, in chunks of kSampleChunk images, chunk k drawn with stream k. The images depend on
// the seed and the labels only (not on the device, up to floating-point rounding).
constexpr int64_t kSampleChunk = 500;
Tensor generate(Model& model, const std::vector<int64_t>& labels, uint64_t seed);
// `cvae` or `ddpm-s` for spec (image size divisible by 4), zero parameters on the CPU.
std::shared_ptr<Generator> build_generator(const ModelSpec& spec);

// ddpm-s's noise schedule: β_t linear from 5e-4 to 0.1 over T = 200 steps (DDPM's 1e-4..0.02 at
// T = 1000, scaled by 1000/T), α_t = 1 − β_t, ᾱ_t = ∏_{s≤t} α_s; in float64, t = 0..T−1.
struct DiffusionSchedule {
  std::vector<double> beta, alpha, alpha_bar;
  int64_t steps() const { return static_cast<int64_t>(beta.size()); }
};
const DiffusionSchedule& ddpm_schedule();
// The forward process: x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε, t one step per image of x0 [N,...].
Tensor diffuse(const Tensor& x0, const std::vector<int64_t>& t, const Tensor& eps);
// One ancestral step from x_t with predicted noise eps_hat: (x_t − β_t/√(1 − ᾱ_t)·ε̂)/√α_t + √β_t·z,
// z undefined at t = 0 (no noise on the last step).
Tensor denoising_step(const Tensor& x, const Tensor& eps_hat, int64_t t, const Tensor& z);
// The 32 sinusoidal features of step t: sin(t·f_i) for i < 16, then cos(t·f_i), f_i = 10000^(−i/16).
std::vector<double> time_features(int64_t t);

}  // namespace lethe::nn
