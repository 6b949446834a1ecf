// Recording the graph: grad mode, saved tensors and the nodes each op records. Running it
// (backward, grad) accumulates gradients with ops, so it is the op layer's: engine/ops/backward.cpp.
#include "engine/autograd.h"

namespace lethe::autograd {

namespace {

thread_local bool g_grad_enabled = true;

// A node whose backward rule is a closure; releasing it destroys the closure and what it saved.
struct FnNode final : Node {
  BackwardFn fn;
  std::vector<Tensor> apply(const Tensor& g, Needs needs) override { return fn(g, needs); }
  void release() override { fn = nullptr; }
};

template <class Range>
void record_impl(const char* name, Tensor& output, const Range& inputs, BackwardFn fn) {
  if (!g_grad_enabled) return;
  auto node = std::make_shared<FnNode>();
  bool any = false;
  uint32_t i = 0;
  for (const Tensor* t : inputs) {
    Edge e;
    if (t != nullptr && t->defined() && t->requires_grad()) {
      any = true;
      if (t->grad_fn()) {
        e.fn = t->grad_fn();
      } else {
        e.leaf = t->impl_ptr();
      }
      e.shape = t->shape();
      e.dtype = t->dtype();
    }
    node->next.push_back(std::move(e));
    ++i;
  }
  if (!any) return;
  LETHE_CHECK(i <= 32, name, "autograd supports at most 32 inputs per op");
  node->name = name;
  node->fn = std::move(fn);
  output.impl().grad_fn = std::move(node);
  output.impl().requires_grad = true;
}

}  // namespace

Saved::Saved(const Tensor& t) {
  if (!t.defined()) return;
  t_ = t.detach();  // no grad_fn: a saved output must not own its own node
  version_ = t.impl().storage->version;
}

Tensor Saved::get() const {
  if (!t_.defined()) return t_;
  LETHE_CHECK(t_.impl().storage->version == version_, "backward",
              "a tensor saved for backward (", t_.str(), ") was modified in place after it was saved");
  return t_;
}

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t != nullptr && t->defined() && t->requires_grad()) return true;
  return false;
}

void record(const char* name, Tensor& output, std::initializer_list<const Tensor*> inputs,
            BackwardFn fn) {
  record_impl(name, output, inputs, std::move(fn));
}

void record(const char* name, Tensor& output, const std::vector<Tensor>& inputs, BackwardFn fn) {
  std::vector<const Tensor*> ptrs;
  for (const Tensor& t : inputs) ptrs.push_back(&t);
  record_impl(name, output, ptrs, std::move(fn));
}

}  // namespace lethe::autograd
