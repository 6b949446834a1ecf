#pragma once
// Reverse-mode autograd, define-by-run, in the spirit of micrograd: every differentiable op
// records one Node holding what its backward needs; backward() walks the nodes in reverse
// topological order, then frees what they saved. Recording is the core layer's; backward and
// grad run ops (they add up gradients), so they are defined in the op layer
// (engine/ops/backward.cpp), like Tensor's kernel-running members.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace lethe::autograd {

// Where a node sends the gradient of one of its inputs: the input's own node, or the leaf
// tensor whose .grad accumulates it.
struct Edge {
  std::shared_ptr<Node> fn;
  std::shared_ptr<TensorImpl> leaf;
  Shape shape;  // expected gradient shape, checked on arrival
  DType dtype = DType::f32;
};

// Which inputs of a node need a gradient, so a backward rule can skip the others' work.
struct Needs {
  uint32_t mask = 0;
  bool operator[](size_t i) const { return (mask >> i) & 1u; }
};
struct Node {
  virtual ~Node() = default;
  // Gradients for each input edge (undefined where an input needs none).
  virtual std::vector<Tensor> apply(const Tensor& grad_output, Needs needs) = 0;
  virtual void release() = 0;  // drops saved tensors
  std::string name;
  std::vector<Edge> next;
  bool released = false;
};

// A tensor saved for backward, with the storage version it had when saved.
class Saved {
 public:
  Saved() = default;
  explicit Saved(const Tensor& t);
  Tensor get() const;  // throws if the tensor was modified in place since it was saved
  bool defined() const { return t_.defined(); }

 private:
  Tensor t_;
  uint64_t version_ = 0;
};

// Grad mode is per thread, on by default.
bool grad_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when an op on `inputs` must be recorded.
bool needs_grad(std::initializer_list<const Tensor*> inputs);

using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output, Needs needs)>;

// Records `output` as produced by `name` from `inputs`; `fn` returns one gradient per input.
// Does nothing unless grad mode is on and some input requires grad.
void record(const char* name, Tensor& output, std::initializer_list<const Tensor*> inputs,
            BackwardFn fn);
void record(const char* name, Tensor& output, const std::vector<Tensor>& inputs, BackwardFn fn);

// Backpropagates from `root`. With `grad` undefined, root must hold one element (seeded with 1).
// Leaf gradients accumulate into .grad (in place when .grad is already a buffer, so views into a
// parameter arena's gradient buffer stay views).
void backward(const Tensor& root, const Tensor& grad, bool retain_graph);

// Gradients of `root` with respect to `inputs` (leaves), returned instead of accumulated:
// .grad is untouched. Used to compute two gradients (retain and forget) for the same parameters.
std::vector<Tensor> grad(const Tensor& root, const std::vector<Tensor>& inputs,
                         bool retain_graph = false);

}  // namespace lethe::autograd

namespace lethe {
using autograd::NoGradGuard;
}
