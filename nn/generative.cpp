#include "nn/generative.h"

#include <algorithm>
#include <cmath>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "kernels/common/philox.h"
#include "nn/layers.h"
#include "nn/models.h"

namespace lethe::nn {

namespace {

// A float64 host vector as a tensor of x's dtype on x's device.
Tensor like(const std::vector<double>& values, const Shape& shape, const Tensor& x) {
  return Tensor::from_vector(values, shape).to(x.dtype()).to(x.device());
}

void check_batch(const char* op, const Tensor& images, const Tensor& labels, int64_t channels, int64_t size) {
  LETHE_CHECK(images.defined() && images.dim() == 4 && images.size(1) == channels && images.size(2) == size &&
                  images.size(3) == size,
              op, "expects images [N,", channels, ",", size, ",", size, "], got ", images.str());
  LETHE_CHECK(labels.defined() && labels.dim() == 1 && labels.size(0) == images.size(0), op,
              "expects one label per image, got ", labels.str(), " for ", images.str());
}

// Conditional VAE (README, W5): the label is an extra input channel of the encoder and an extra
// input of the decoder; Bernoulli-logit pixels (BCE against pixels in [0, 1]) and a 16-d latent.
class Cvae : public Generator {
 public:
  static constexpr int64_t kLatent = 16;

  explicit Cvae(const ModelSpec& s) : channels_(s.in_channels), size_(s.image_size) {
    const int64_t quarter = s.image_size / 4, flat = 64 * quarter * quarter;
    encoder_label_ = register_module("encoder_label", std::make_shared<Embedding>(s.classes, s.image_size * s.image_size));
    enc_conv1_ = register_module("enc_conv1", std::make_shared<Conv2d>(s.in_channels + 1, 32, 4, 2, 1));
    enc_conv2_ = register_module("enc_conv2", std::make_shared<Conv2d>(32, 64, 4, 2, 1));
    fc_mu_ = register_module("fc_mu", std::make_shared<Linear>(flat, kLatent));
    fc_logvar_ = register_module("fc_logvar", std::make_shared<Linear>(flat, kLatent));
    decoder_label_ = register_module("decoder_label", std::make_shared<Embedding>(s.classes, kLatent));
    dec_fc_ = register_module("dec_fc", std::make_shared<Linear>(2 * kLatent, flat));
    dec_conv1_ = register_module("dec_conv1", std::make_shared<Conv2d>(64, 32, 3, 1, 1));
    dec_conv2_ = register_module("dec_conv2", std::make_shared<Conv2d>(32, s.in_channels, 3, 1, 1));
  }

  // −ELBO = Σ_pixels BCE(logits, x) + KL(N(μ, σ²) ‖ N(0, I)), one ε per image.
  Tensor loss(const Tensor& images, const Tensor& labels, uint64_t seed, uint64_t stream) override {
    check_batch("cvae", images, labels, channels_, size_);
    const int64_t n = images.size(0);
    const Tensor label_plane = encoder_label_->forward(labels).view({n, 1, size_, size_});
    Tensor h = relu(enc_conv1_->forward(concat({images, label_plane}, 1)));
    h = relu(enc_conv2_->forward(h)).flatten(1);
    const Tensor mu = fc_mu_->forward(h), logvar = fc_logvar_->forward(h);
    const Tensor eps = Tensor::randn({n, kLatent}, seed, substream(stream, 0), mu.dtype(), mu.device());
    const Tensor z = add(mu, mul(exp(mul(logvar, 0.5)), eps));
    const Tensor reconstruction =
        sum(binary_cross_entropy_with_logits(decode(z, labels), images, Reduction::none), {1, 2, 3});
    const Tensor kl = mul(sum(sub(sub(add(logvar, 1.0), mul(mu, mu)), exp(logvar)), {1}), -0.5);
    return add(reconstruction, kl);
  }

  // z ~ N(0, I), pixels = sigmoid(decoder logits): the Bernoulli means.
  Tensor sample(const Tensor& labels, uint64_t seed, uint64_t stream) override {
    const Tensor any = decoder_label_->named_parameters().front().second;  // a handle: the list is a temporary
    const Tensor z = Tensor::randn({labels.numel(), kLatent}, seed, substream(stream, 0), any.dtype(), any.device());
    return sigmoid(decode(z, labels));
  }

 private:
  Tensor decode(const Tensor& z, const Tensor& labels) {
    const int64_t quarter = size_ / 4;
    Tensor h = relu(dec_fc_->forward(concat({z, decoder_label_->forward(labels)}, 1)));
    h = h.view({z.size(0), 64, quarter, quarter});
    h = relu(dec_conv1_->forward(upsample_nearest2d(h, 2)));
    return dec_conv2_->forward(upsample_nearest2d(h, 2));
  }

  int64_t channels_, size_;
  std::shared_ptr<Embedding> encoder_label_, decoder_label_;
  std::shared_ptr<Conv2d> enc_conv1_, enc_conv2_, dec_conv1_, dec_conv2_;
  std::shared_ptr<Linear> fc_mu_, fc_logvar_, dec_fc_;
};

// ddpm-s's residual block: conv(silu(norm(x))) plus the projected embedding, again, plus the
// (1×1-projected when the width changes) input.
class ResBlock : public Module {
 public:
  ResBlock(int64_t in, int64_t out, int64_t embedding) {
    norm1_ = register_module("norm1", std::make_shared<GroupNorm>(8, in));
    conv1_ = register_module("conv1", std::make_shared<Conv2d>(in, out, 3, 1, 1));
    emb_proj_ = register_module("emb_proj", std::make_shared<Linear>(embedding, out));
    norm2_ = register_module("norm2", std::make_shared<GroupNorm>(8, out));
    conv2_ = register_module("conv2", std::make_shared<Conv2d>(out, out, 3, 1, 1));
    if (in != out) skip_ = register_module("skip", std::make_shared<Conv2d>(in, out, 1));
  }

  Tensor forward(const Tensor&) override { LETHE_FAIL("ResBlock", "needs the embedding: call apply(x, embedding)"); }

  // silu_embedding: silu of the step and class embedding [N, E].
  Tensor apply(const Tensor& x, const Tensor& silu_embedding) {
    const Tensor e = emb_proj_->forward(silu_embedding);
    Tensor h = conv1_->forward(silu(norm1_->forward(x)));
    h = add(h, e.view({e.size(0), e.size(1), 1, 1}));
    h = conv2_->forward(silu(norm2_->forward(h)));
    return add(h, skip_ ? skip_->forward(x) : x);
  }

 private:
  std::shared_ptr<GroupNorm> norm1_, norm2_;
  std::shared_ptr<Conv2d> conv1_, conv2_, skip_;
  std::shared_ptr<Linear> emb_proj_;
};

// A small class-conditional U-Net that predicts the noise ε of x_t (README, W5).
class DdpmS : public Generator {
 public:
  static constexpr int64_t kFeatures = 32, kEmbedding = 128;

  explicit DdpmS(const ModelSpec& s) : channels_(s.in_channels), size_(s.image_size) {
    auto mlp = std::make_shared<Sequential>();
    mlp->add(std::make_shared<Linear>(kFeatures, kEmbedding));
    mlp->add(std::make_shared<SiLU>());
    mlp->add(std::make_shared<Linear>(kEmbedding, kEmbedding));
    time_mlp_ = register_module("time_mlp", mlp);
    class_embedding_ = register_module("class_embedding", std::make_shared<Embedding>(s.classes, kEmbedding));
    conv_in_ = register_module("conv_in", std::make_shared<Conv2d>(s.in_channels, 32, 3, 1, 1));
    down1_ = register_module("down1", std::make_shared<ResBlock>(32, 32, kEmbedding));
    down2_ = register_module("down2", std::make_shared<ResBlock>(32, 64, kEmbedding));
    mid_ = register_module("mid", std::make_shared<ResBlock>(64, 64, kEmbedding));
    up2_ = register_module("up2", std::make_shared<ResBlock>(128, 64, kEmbedding));
    up1_ = register_module("up1", std::make_shared<ResBlock>(96, 32, kEmbedding));
    norm_out_ = register_module("norm_out", std::make_shared<GroupNorm>(8, 32));
    conv_out_ = register_module("conv_out", std::make_shared<Conv2d>(32, s.in_channels, 3, 1, 1));
  }

  // The predicted noise of x_t [N,C,H,W] at steps t (one per image).
  Tensor denoise(const Tensor& x, const std::vector<int64_t>& t, const Tensor& labels) {
    std::vector<double> features;
    for (int64_t step : t) {
      const std::vector<double> f = time_features(step);
      features.insert(features.end(), f.begin(), f.end());
    }
    const Tensor steps = like(features, {static_cast<int64_t>(t.size()), kFeatures}, x);
    const Tensor e = silu(add(time_mlp_->forward(steps), class_embedding_->forward(labels)));
    const Tensor h1 = down1_->apply(conv_in_->forward(x), e);
    const Tensor h2 = down2_->apply(avg_pool2d(h1, halve()), e);
    const Tensor m = mid_->apply(avg_pool2d(h2, halve()), e);
    const Tensor u2 = up2_->apply(concat({upsample_nearest2d(m, 2), h2}, 1), e);
    const Tensor u1 = up1_->apply(concat({upsample_nearest2d(u2, 2), h1}, 1), e);
    return conv_out_->forward(silu(norm_out_->forward(u1)));
  }

  // DDPM's simple loss: t uniform in [0, T), ε ~ N(0, I), x_0 = 2·pixel − 1,
  // x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε, loss = mean over pixels of (ε̂ − ε)².
  Tensor loss(const Tensor& images, const Tensor& labels, uint64_t seed, uint64_t stream) override {
    check_batch("ddpm-s", images, labels, channels_, size_);
    const int64_t n = images.size(0), steps = ddpm_schedule().steps();
    std::vector<int64_t> t(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const float u = philox::uniform(seed, substream(stream, 0), static_cast<uint64_t>(i));
      t[static_cast<size_t>(i)] = std::min(static_cast<int64_t>(u * static_cast<float>(steps)), steps - 1);
    }
    const Tensor eps = Tensor::randn(images.shape(), seed, substream(stream, 1), images.dtype(), images.device());
    const Tensor xt = diffuse(sub(mul(images, 2.0), 1.0), t, eps);
    const Tensor err = sub(denoise(xt, t, labels), eps);
    return mean(mul(err, err), {1, 2, 3});
  }

  // Ancestral sampling: x_T ~ N(0, I); x_{t−1} = (x_t − β_t/√(1 − ᾱ_t)·ε̂)/√α_t + √β_t·z (z = 0 at
  // the last step); pixels = clamp((x_0 + 1)/2, 0, 1).
  Tensor sample(const Tensor& labels, uint64_t seed, uint64_t stream) override {
    NoGradGuard no_grad;
    const DiffusionSchedule& s = ddpm_schedule();
    const Tensor any = conv_in_->named_parameters().front().second;  // a handle: the list is a temporary
    const Shape shape{labels.numel(), channels_, size_, size_};
    Tensor x = Tensor::randn(shape, seed, substream(stream, 0), any.dtype(), any.device());
    for (int64_t t = s.steps() - 1; t >= 0; --t) {
      const Tensor eps = denoise(x, std::vector<int64_t>(static_cast<size_t>(labels.numel()), t), labels);
      const Tensor z = t > 0 ? Tensor::randn(shape, seed, substream(stream, static_cast<uint64_t>(s.steps() - t)),
                                             any.dtype(), any.device())
                             : Tensor();
      x = denoising_step(x, eps, t, z);
    }
    return clamp(mul(add(x, 1.0), 0.5), 0, 1);
  }

 private:
  static Pool2dOptions halve() { return Pool2dOptions{}; }  // the defaults: 2×2, stride 2

  int64_t channels_, size_;
  std::shared_ptr<Sequential> time_mlp_;
  std::shared_ptr<Embedding> class_embedding_;
  std::shared_ptr<Conv2d> conv_in_, conv_out_;
  std::shared_ptr<ResBlock> down1_, down2_, mid_, up2_, up1_;
  std::shared_ptr<GroupNorm> norm_out_;
};

}  // namespace

Tensor Generator::forward(const Tensor&) {
  LETHE_FAIL("model", "a generator has no forward(images): its loss takes images and labels, sample() makes images");
}

bool is_generator_name(const std::string& name) { return name == "cvae" || name == "ddpm-s"; }

Tensor generate(Model& model, const std::vector<int64_t>& labels, uint64_t seed) {
  Generator* g = model.generator();
  LETHE_CHECK(g != nullptr, "sample", model.spec().name, " is a classifier, not a generator (cvae, ddpm-s)");
  LETHE_CHECK(!labels.empty(), "sample", "no labels to sample for");
  for (int64_t y : labels)
    LETHE_CHECK(y >= 0 && y < model.spec().classes, "sample", "class ", y, " is not one of the model's ",
                model.spec().classes, " classes (0 to ", model.spec().classes - 1, ")");
  const bool was_training = model.net().is_training();
  model.eval();
  NoGradGuard no_grad;
  std::vector<Tensor> chunks;
  const auto n = static_cast<int64_t>(labels.size());
  for (int64_t first = 0, k = 0; first < n; first += kSampleChunk, ++k) {
    const int64_t count = std::min(kSampleChunk, n - first);
    const std::vector<int64_t> part(labels.begin() + first, labels.begin() + first + count);
    chunks.push_back(g->sample(Tensor::from_vector(part, {count}).to(model.device()), seed, static_cast<uint64_t>(k)));
  }
  model.train(was_training);
  return chunks.size() == 1 ? chunks.front() : concat(chunks, 0);
}

std::shared_ptr<Generator> build_generator(const ModelSpec& spec) {
  LETHE_CHECK(spec.image_size % 4 == 0 && spec.image_size >= 8, "model", spec.name,
              " needs an image size divisible by 4 (two halvings), got ", spec.image_size);
  if (spec.name == "cvae") return std::make_shared<Cvae>(spec);
  if (spec.name == "ddpm-s") return std::make_shared<DdpmS>(spec);
  LETHE_FAIL("model", spec.name, " is not a generator (cvae, ddpm-s)");
}

const DiffusionSchedule& ddpm_schedule() {
  static const DiffusionSchedule schedule = [] {
    constexpr int64_t kSteps = 200;
    DiffusionSchedule s;
    double product = 1;
    for (int64_t t = 0; t < kSteps; ++t) {
      const double beta = 5e-4 + (0.1 - 5e-4) * static_cast<double>(t) / static_cast<double>(kSteps - 1);
      product *= 1 - beta;
      s.beta.push_back(beta);
      s.alpha.push_back(1 - beta);
      s.alpha_bar.push_back(product);
    }
    return s;
  }();
  return schedule;
}

Tensor diffuse(const Tensor& x0, const std::vector<int64_t>& t, const Tensor& eps) {
  const DiffusionSchedule& s = ddpm_schedule();
  LETHE_CHECK(x0.defined() && x0.dim() >= 1 && x0.size(0) == static_cast<int64_t>(t.size()) && eps.defined() &&
                  eps.shape() == x0.shape(),
              "diffuse", "expects x0 [N,...], N steps and noise of x0's shape, got ", x0.str(), ", ", t.size(),
              " steps, ", eps.str());
  std::vector<double> signal, noise;
  for (int64_t step : t) {
    LETHE_CHECK(step >= 0 && step < s.steps(), "diffuse", "step ", step, " is not in [0, ", s.steps(), ")");
    signal.push_back(std::sqrt(s.alpha_bar[step]));
    noise.push_back(std::sqrt(1 - s.alpha_bar[step]));
  }
  std::vector<int64_t> per_image(static_cast<size_t>(x0.dim()), 1);
  per_image[0] = x0.size(0);
  const Shape shape(per_image.begin(), per_image.end());
  return add(mul(x0, like(signal, shape, x0)), mul(eps, like(noise, shape, x0)));
}

Tensor denoising_step(const Tensor& x, const Tensor& eps_hat, int64_t t, const Tensor& z) {
  const DiffusionSchedule& s = ddpm_schedule();
  LETHE_CHECK(t >= 0 && t < s.steps(), "denoising_step", "step ", t, " is not in [0, ", s.steps(), ")");
  LETHE_CHECK(z.defined() == (t > 0), "denoising_step", t > 0 ? "needs noise z before the last step"
                                                               : "takes no noise at the last step (t = 0)");
  const Tensor mean = div(sub(x, mul(eps_hat, s.beta[t] / std::sqrt(1 - s.alpha_bar[t]))), std::sqrt(s.alpha[t]));
  return z.defined() ? add(mean, mul(z, std::sqrt(s.beta[t]))) : mean;
}

std::vector<double> time_features(int64_t t) {
  std::vector<double> f(32);
  for (int i = 0; i < 16; ++i) {
    const double angle = static_cast<double>(t) * std::pow(10000.0, -i / 16.0);
    f[i] = std::sin(angle);
    f[16 + i] = std::cos(angle);
  }
  return f;
}

}  // namespace lethe::nn
