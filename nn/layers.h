#pragma once
// The layers the unlearning literature's small models are built from. Each mirrors the PyTorch
// module of the same name: same parameter and buffer names, layouts and default initialisation.
#include <memory>
#include <string>

#include "engine/ops.h"
#include "nn/module.h"

namespace lethe::nn {

// y = x·Wᵀ + b; weight [out,in], bias [out]. Init: kaiming_uniform(a=√5), which is U(±1/√in),
// and bias U(±1/√in), as torch.nn.Linear.
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& x) override;
  void reset_parameters(uint64_t seed, uint64_t first_stream) override;
  const Tensor& weight() const { return weight_; }

 private:
  Tensor weight_, bias_;
};

// weight [out, in/groups, k, k], bias [out]; init as torch.nn.Conv2d (U(±1/√fan_in) for both,
// fan_in = in/groups·k·k).
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int kernel_size, int stride = 1, int padding = 0,
         bool bias = true, int groups = 1);
  Tensor forward(const Tensor& x) override;
  void reset_parameters(uint64_t seed, uint64_t first_stream) override;
  const Conv2dOptions& options() const { return options_; }
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }  // undefined without bias

 private:
  Tensor weight_, bias_;
  Conv2dOptions options_;
};

// weight 1, bias 0; buffers running_mean 0, running_var 1, num_batches_tracked (int64) 0.
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t channels, double eps = 1e-5, double momentum = 0.1);
  Tensor forward(const Tensor& x) override;
  void reset_parameters(uint64_t seed, uint64_t first_stream) override;
  double eps() const { return eps_; }
  double momentum() const { return momentum_; }

 private:
  Tensor weight_, bias_, running_mean_, running_var_, batches_tracked_;
  double eps_, momentum_;
};

// weight [num, dim] ~ N(0, 1) (torch.nn.Embedding); forward takes int32/int64 indices [N] and gives
// their rows [N, dim].
class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim);
  Tensor forward(const Tensor& indices) override { return index_select(weight_, 0, indices); }
  void reset_parameters(uint64_t seed, uint64_t first_stream) override;

 private:
  Tensor weight_;
};

// weight 1, bias 0 [channels]; statistics per sample and group (torch.nn.GroupNorm).
class GroupNorm : public Module {
 public:
  GroupNorm(int64_t groups, int64_t channels, double eps = 1e-5);
  Tensor forward(const Tensor& x) override { return group_norm(x, groups_, weight_, bias_, eps_); }
  void reset_parameters(uint64_t seed, uint64_t first_stream) override;

 private:
  Tensor weight_, bias_;
  int64_t groups_;
  double eps_;
};

class SiLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return silu(x); }
};

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return relu(x); }
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(int kernel_size, int stride = 0, int padding = 0);  // stride 0: = kernel_size
  Tensor forward(const Tensor& x) override { return max_pool2d(x, options_); }
  const Pool2dOptions& options() const { return options_; }

 private:
  Pool2dOptions options_;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(int kernel_size, int stride = 0, int padding = 0);
  Tensor forward(const Tensor& x) override { return avg_pool2d(x, options_); }

 private:
  Pool2dOptions options_;
};

// [N,C,H,W] -> [N,C] (AdaptiveAvgPool2d(1) followed by flatten).
class GlobalAvgPool : public Module {
 public:
  Tensor forward(const Tensor& x) override { return global_avg_pool2d(x); }
};

// Inverted dropout. Masks come from Philox (seed, call number): the k-th training call of the
// module uses stream k, so a run is reproducible and device-independent.
class Dropout : public Module {
 public:
  explicit Dropout(double p, uint64_t seed = 0);
  Tensor forward(const Tensor& x) override;

 private:
  double p_;
  uint64_t seed_, calls_ = 0;
};

class Flatten : public Module {
 public:
  explicit Flatten(int start_dim = 1) : start_dim_(start_dim) {}
  Tensor forward(const Tensor& x) override { return x.flatten(start_dim_); }
  int start_dim() const { return start_dim_; }

 private:
  int start_dim_;
};

// Applies its children in order. add(m) names a child by its position ("0", "1", ...), as
// torch.nn.Sequential does; add(name, m) gives it a name.
class Sequential : public Module {
 public:
  Sequential& add(std::shared_ptr<Module> m);
  Sequential& add(std::string name, std::shared_ptr<Module> m);
  // The layers in order; Conv2d, ReLU, MaxPool2d(2) in a row run as one op (conv2d_relu_max_pool2:
  // the same values and gradients, less memory traffic).
  Tensor forward(const Tensor& x) override;
  // The layers in order, named (for code that walks a network, as nn/stacked.cpp does).
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& layers() const { return children(); }
};

// torchvision's BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), 3×3 convs
// without bias; the shortcut is `downsample` (1×1 conv with the block's stride, then BN) when
// the stride or the channel count changes, the identity otherwise.
class BasicBlock : public Module {
 public:
  BasicBlock(int64_t in_channels, int64_t out_channels, int stride);
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_;
  std::shared_ptr<Sequential> downsample_;
};

}  // namespace lethe::nn
