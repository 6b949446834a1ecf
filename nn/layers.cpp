#include "nn/layers.h"

#include <cmath>
#include <typeinfo>

#include "engine/autograd.h"
#include "engine/error.h"
#include "kernels/common/pool.h"

namespace lethe::nn {

namespace {

// Overwrites `param` with U(−bound, bound) drawn from Philox (seed, stream) on its own device.
void fill_uniform(const Tensor& param, double bound, uint64_t seed, uint64_t stream) {
  NoGradGuard no_grad;
  const Tensor u = Tensor::rand(param.shape(), seed, stream, param.dtype(), param.device());
  Tensor(param).copy_(sub(mul(u, 2 * bound), bound));
}

Tensor zeros_param(const Shape& shape) { return Tensor::zeros(shape); }

}  // namespace

Linear::Linear(int64_t in_features, int64_t out_features, bool bias) {
  LETHE_CHECK(in_features > 0 && out_features > 0, "Linear", "bad sizes ", in_features, " -> ", out_features);
  weight_ = register_parameter("weight", zeros_param({out_features, in_features}));
  if (bias) bias_ = register_parameter("bias", zeros_param({out_features}));
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight_, bias_); }

void Linear::reset_parameters(uint64_t seed, uint64_t first_stream) {
  const double bound = 1 / std::sqrt(static_cast<double>(weight_.size(1)));
  fill_uniform(weight_, bound, seed, first_stream);
  if (bias_.defined()) fill_uniform(bias_, bound, seed, first_stream + 1);
}

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int kernel_size, int stride, int padding, bool bias,
               int groups) {
  LETHE_CHECK(in_channels > 0 && out_channels > 0 && kernel_size > 0 && stride > 0 && padding >= 0 && groups > 0 &&
                  in_channels % groups == 0 && out_channels % groups == 0,
              "Conv2d", "bad configuration: ", in_channels, " -> ", out_channels, " channels, kernel ", kernel_size,
              ", stride ", stride, ", padding ", padding, ", groups ", groups);
  weight_ = register_parameter("weight", zeros_param({out_channels, in_channels / groups, kernel_size, kernel_size}));
  if (bias) bias_ = register_parameter("bias", zeros_param({out_channels}));
  options_.stride_h = options_.stride_w = stride;
  options_.pad_h = options_.pad_w = padding;
  options_.groups = groups;
}

Tensor Conv2d::forward(const Tensor& x) { return conv2d(x, weight_, bias_, options_); }

void Conv2d::reset_parameters(uint64_t seed, uint64_t first_stream) {
  const double fan_in = static_cast<double>(weight_.size(1) * weight_.size(2) * weight_.size(3));
  const double bound = 1 / std::sqrt(fan_in);
  fill_uniform(weight_, bound, seed, first_stream);
  if (bias_.defined()) fill_uniform(bias_, bound, seed, first_stream + 1);
}

Embedding::Embedding(int64_t num_embeddings, int64_t embedding_dim) {
  LETHE_CHECK(num_embeddings > 0 && embedding_dim > 0, "Embedding", "bad sizes ", num_embeddings, " × ", embedding_dim);
  weight_ = register_parameter("weight", zeros_param({num_embeddings, embedding_dim}));
}

void Embedding::reset_parameters(uint64_t seed, uint64_t first_stream) {
  NoGradGuard no_grad;
  Tensor(weight_).copy_(Tensor::randn(weight_.shape(), seed, first_stream, weight_.dtype(), weight_.device()));
}

GroupNorm::GroupNorm(int64_t groups, int64_t channels, double eps) : groups_(groups), eps_(eps) {
  LETHE_CHECK(groups > 0 && channels > 0 && channels % groups == 0, "GroupNorm", groups, " groups do not divide ",
              channels, " channels");
  weight_ = register_parameter("weight", Tensor::ones({channels}));
  bias_ = register_parameter("bias", Tensor::zeros({channels}));
}

void GroupNorm::reset_parameters(uint64_t, uint64_t) {
  NoGradGuard no_grad;
  weight_.fill_(1);
  bias_.fill_(0);
}

BatchNorm2d::BatchNorm2d(int64_t channels, double eps, double momentum) : eps_(eps), momentum_(momentum) {
  LETHE_CHECK(channels > 0, "BatchNorm2d", "bad channel count ", channels);
  weight_ = register_parameter("weight", Tensor::ones({channels}));
  bias_ = register_parameter("bias", Tensor::zeros({channels}));
  running_mean_ = register_buffer("running_mean", Tensor::zeros({channels}));
  running_var_ = register_buffer("running_var", Tensor::ones({channels}));
  batches_tracked_ = register_buffer("num_batches_tracked", Tensor::zeros({}, DType::i64));
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  const bool training = is_training();
  if (training) {
    NoGradGuard no_grad;
    batches_tracked_.add_(Tensor::ones({}, DType::i64, batches_tracked_.device()));
  }
  return batch_norm(x, weight_, bias_, running_mean_, running_var_, training, momentum_, eps_);
}

void BatchNorm2d::reset_parameters(uint64_t, uint64_t) {
  NoGradGuard no_grad;
  weight_.fill_(1);
  bias_.fill_(0);
}

namespace {
Pool2dOptions pool_options(const char* op, int kernel_size, int stride, int padding) {
  LETHE_CHECK(kernel_size > 0 && stride >= 0 && padding >= 0, op, "bad configuration: kernel ", kernel_size,
              ", stride ", stride, ", padding ", padding);
  Pool2dOptions o;
  o.kernel_h = o.kernel_w = kernel_size;
  o.stride_h = o.stride_w = stride == 0 ? kernel_size : stride;
  o.pad_h = o.pad_w = padding;
  return o;
}
}  // namespace

MaxPool2d::MaxPool2d(int kernel_size, int stride, int padding)
    : options_(pool_options("MaxPool2d", kernel_size, stride, padding)) {}

AvgPool2d::AvgPool2d(int kernel_size, int stride, int padding)
    : options_(pool_options("AvgPool2d", kernel_size, stride, padding)) {}

Dropout::Dropout(double p, uint64_t seed) : p_(p), seed_(seed) {
  LETHE_CHECK(p >= 0 && p < 1, "Dropout", "p must be in [0, 1), got ", p);
}

Tensor Dropout::forward(const Tensor& x) {
  if (!is_training() || p_ == 0) return x;
  return dropout(x, p_, true, seed_, calls_++);
}

Sequential& Sequential::add(std::shared_ptr<Module> m) {
  return add(std::to_string(children().size()), std::move(m));
}

Sequential& Sequential::add(std::string name, std::shared_ptr<Module> m) {
  register_module(std::move(name), std::move(m));
  return *this;
}

namespace {
// The Conv2d at layers[i] when it, a ReLU and a MaxPool2d(2) (kernel 2, stride 2, no padding) come
// in a row, on a batch of images; null otherwise.
const Conv2d* conv_relu_max_pool2_at(const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& layers,
                                     size_t i, const Tensor& x) {
  if (i + 2 >= layers.size() || x.dim() != 4) return nullptr;
  const Module &first = *layers[i].second, &second = *layers[i + 1].second, &third = *layers[i + 2].second;
  if (typeid(first) != typeid(Conv2d) || typeid(second) != typeid(ReLU) || typeid(third) != typeid(MaxPool2d))
    return nullptr;
  return is_pool2(static_cast<const MaxPool2d&>(third).options()) ? &static_cast<const Conv2d&>(first) : nullptr;
}
}  // namespace

Tensor Sequential::forward(const Tensor& x) {
  const auto& layers = children();
  Tensor h = x;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (const Conv2d* conv = conv_relu_max_pool2_at(layers, i, h)) {
      h = conv2d_relu_max_pool2(h, conv->weight(), conv->bias(), conv->options());
      i += 2;
    } else {
      h = layers[i].second->forward(h);
    }
  }
  return h;
}

BasicBlock::BasicBlock(int64_t in_channels, int64_t out_channels, int stride) {
  conv1_ = register_module("conv1", std::make_shared<Conv2d>(in_channels, out_channels, 3, stride, 1, false));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(out_channels));
  conv2_ = register_module("conv2", std::make_shared<Conv2d>(out_channels, out_channels, 3, 1, 1, false));
  bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(out_channels));
  if (stride != 1 || in_channels != out_channels) {
    auto shortcut = std::make_shared<Sequential>();
    shortcut->add(std::make_shared<Conv2d>(in_channels, out_channels, 1, stride, 0, false));
    shortcut->add(std::make_shared<BatchNorm2d>(out_channels));
    downsample_ = register_module("downsample", shortcut);
  }
}

Tensor BasicBlock::forward(const Tensor& x) {
  const Tensor h = relu(bn1_->forward(conv1_->forward(x)));
  const Tensor y = bn2_->forward(conv2_->forward(h));
  return relu(add(y, downsample_ ? downsample_->forward(x) : x));
}

}  // namespace lethe::nn
