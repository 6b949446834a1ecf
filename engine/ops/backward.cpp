// The backward pass: walks the graph autograd::record built, root first, and accumulates each
// gradient with add. It runs ops, so it belongs to the op layer; recording is the core's
// (engine/autograd.cpp).
#include <unordered_map>
#include <unordered_set>

#include "engine/autograd.h"
#include "engine/ops.h"

namespace lethe::autograd {

namespace {

// Nodes reachable from `root` such that every node comes after all nodes that feed it a gradient.
std::vector<Node*> topological_order(Node* root) {
  std::vector<Node*> order;
  std::unordered_set<Node*> seen{root};
  std::vector<std::pair<Node*, size_t>> stack{{root, 0}};
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->next.size()) {
      Node* child = node->next[next++].fn.get();
      if (child != nullptr && seen.insert(child).second) stack.push_back({child, 0});
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }
  return {order.rbegin(), order.rend()};  // root first
}

void accumulate(Tensor& slot, const Tensor& g) {
  if (!slot.defined()) {
    slot = g;
  } else {
    slot = add(slot, g);
  }
}

// Shared walk of backward() and grad(): `capture` maps leaf impls to output slots; when it is
// null, leaf gradients accumulate into .grad.
void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph,
                  std::unordered_map<TensorImpl*, Tensor>* capture, const char* op) {
  LETHE_CHECK(root.defined(), op, "undefined tensor");
  LETHE_CHECK(root.requires_grad(), op, "tensor ", root.str(),
              " does not require grad (nothing in its graph requires grad)");
  Tensor seed = grad;
  if (!seed.defined()) {
    LETHE_CHECK(root.numel() == 1, op, "an implicit gradient needs a one-element tensor, got ",
                root.str(), "; pass the gradient explicitly");
    seed = Tensor::ones(root.shape(), root.dtype(), root.device());
  }
  LETHE_CHECK(seed.shape() == root.shape() && seed.dtype() == root.dtype() &&
                  seed.device() == root.device(),
              op, "gradient ", seed.str(), " does not match tensor ", root.str());
  NoGradGuard no_grad;

  auto deliver_to_leaf = [&](const std::shared_ptr<TensorImpl>& leaf, const Tensor& g) {
    if (capture != nullptr) {
      auto it = capture->find(leaf.get());
      if (it != capture->end()) accumulate(it->second, g);
      return;
    }
    Tensor t(leaf);
    if (t.grad().defined()) {
      t.grad().add_(g);  // in place: .grad may be a view into a gradient arena
    } else {
      t.set_grad(g.clone());
    }
  };

  if (root.is_leaf()) {
    deliver_to_leaf(root.impl_ptr(), seed);
    return;
  }
  std::unordered_map<Node*, Tensor> pending;
  pending[root.grad_fn().get()] = seed;
  for (Node* node : topological_order(root.grad_fn().get())) {
    auto it = pending.find(node);
    if (it == pending.end()) continue;
    const Tensor g = std::move(it->second);
    pending.erase(it);
    LETHE_CHECK(!node->released, op, "node '", node->name,
                "' was already freed by an earlier backward; pass retain_graph=true to it");
    Needs needs;
    for (size_t i = 0; i < node->next.size(); ++i)
      if (node->next[i].fn || node->next[i].leaf) needs.mask |= 1u << i;
    std::vector<Tensor> grads = node->apply(g, needs);
    LETHE_CHECK(grads.size() == node->next.size(), op, "node '", node->name, "' returned ",
                grads.size(), " gradients for ", node->next.size(), " inputs");
    for (size_t i = 0; i < grads.size(); ++i) {
      const Edge& e = node->next[i];
      if (!needs[i] || !grads[i].defined()) continue;
      LETHE_CHECK(grads[i].shape() == e.shape && grads[i].dtype() == e.dtype, op, "node '",
                  node->name, "' produced gradient ", grads[i].str(), " for input ", i, " of shape ",
                  e.shape.str(), " and dtype ", dtype_name(e.dtype));
      if (e.fn) {
        accumulate(pending[e.fn.get()], grads[i]);
      } else {
        deliver_to_leaf(e.leaf, grads[i]);
      }
    }
    if (!retain_graph) {
      node->release();
      node->released = true;
    }
  }
}

}  // namespace

void backward(const Tensor& root, const Tensor& grad, bool retain_graph) {
  run_backward(root, grad, retain_graph, nullptr, "backward");
}

std::vector<Tensor> grad(const Tensor& root, const std::vector<Tensor>& inputs, bool retain_graph) {
  std::unordered_map<TensorImpl*, Tensor> capture;
  for (size_t i = 0; i < inputs.size(); ++i) {
    LETHE_CHECK(inputs[i].defined() && inputs[i].is_leaf() && inputs[i].requires_grad(), "grad",
                "input ", i, " is not a leaf tensor that requires grad");
    capture[inputs[i].impl_ptr().get()] = Tensor();
  }
  run_backward(root, Tensor(), retain_graph, &capture, "grad");
  std::vector<Tensor> out;
  for (const Tensor& t : inputs) {
    Tensor g = capture[t.impl_ptr().get()];
    // Inputs that the graph does not reach get zeros, so callers can use the result directly.
    out.push_back(g.defined() ? g : Tensor::zeros(t.shape(), t.dtype(), t.device()));
  }
  return out;
}

}  // namespace lethe::autograd
