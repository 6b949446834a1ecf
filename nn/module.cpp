#include "nn/module.h"

#include <map>
#include <set>

#include "engine/autograd.h"
#include "engine/error.h"

namespace lethe::nn {

namespace {

void check_name(const std::string& name, const char* what) {
  LETHE_CHECK(!name.empty() && name.find('.') == std::string::npos, "module", "bad ", what, " name '", name,
              "': names are non-empty and contain no '.'");
}

// Points `t` at `src`'s storage, layout and dtype, keeping the TensorImpl (and so every handle)
// alive.
void rebind(const Tensor& t, const Tensor& src) {
  TensorImpl& impl = t.impl();
  impl.storage = src.impl().storage;
  impl.dtype = src.dtype();
  impl.offset = src.offset();
  impl.strides = src.strides();
  impl.grad = nullptr;
}

}  // namespace

const Tensor& Module::register_parameter(std::string name, Tensor value) {
  check_name(name, "parameter");
  LETHE_CHECK(value.defined() && is_floating(value.dtype()), "module", "parameter '", name,
              "' must be a floating tensor");
  value.set_requires_grad();
  parameters_.emplace_back(std::move(name), std::move(value));
  return parameters_.back().second;
}

const Tensor& Module::register_buffer(std::string name, Tensor value) {
  check_name(name, "buffer");
  LETHE_CHECK(value.defined(), "module", "buffer '", name, "' is undefined");
  buffers_.emplace_back(std::move(name), std::move(value));
  return buffers_.back().second;
}

void Module::add_child(std::string name, std::shared_ptr<Module> child) {
  check_name(name, "module");
  LETHE_CHECK(child != nullptr, "module", "child '", name, "' is null");
  children_.emplace_back(std::move(name), std::move(child));
}

void Module::collect(const std::string& prefix, bool parameters, bool buffers, NamedTensors& out) const {
  if (parameters)
    for (const auto& [name, t] : parameters_) out.emplace_back(prefix + name, t);
  if (buffers)
    for (const auto& [name, t] : buffers_) out.emplace_back(prefix + name, t);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", parameters, buffers, out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", true, false, out);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", false, true, out);
  return out;
}

NamedTensors Module::state_dict() const {
  NamedTensors out;
  collect("", true, true, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (const auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

void Module::load_state_dict(const NamedTensors& state) {
  std::map<std::string, Tensor> given;
  std::string duplicated, unexpected, missing, mismatched;
  for (const auto& [name, t] : state)
    if (!given.emplace(name, t).second) duplicated += " " + name;
  const NamedTensors mine = state_dict();
  std::set<std::string> expected;
  for (const auto& [name, dst] : mine) {
    expected.insert(name);
    const auto it = given.find(name);
    if (it == given.end())
      missing += " " + name;
    else if (it->second.shape() != dst.shape() || it->second.dtype() != dst.dtype())
      mismatched += " " + name + " (" + it->second.str() + ", expected " + dst.str() + ")";
  }
  for (const auto& [name, t] : given)
    if (!expected.count(name)) unexpected += " " + name;
  LETHE_CHECK(missing.empty() && unexpected.empty() && duplicated.empty(), "load_state_dict",
              "names do not match the model:", missing.empty() ? "" : " missing", missing,
              unexpected.empty() ? "" : "; unexpected", unexpected, duplicated.empty() ? "" : "; duplicated",
              duplicated);
  LETHE_CHECK(mismatched.empty(), "load_state_dict", "wrong shape or dtype:", mismatched);
  NoGradGuard no_grad;
  for (const auto& [name, dst] : mine) Tensor(dst).copy_(given.at(name));
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::to(Device device) {
  for (auto* list : {&parameters_, &buffers_})
    for (auto& [name, t] : *list)
      if (t.device() != device) rebind(t, t.detach().to(device));
  for (auto& [name, child] : children_) child->to(device);
}

void Module::to(DType dtype) {
  LETHE_CHECK(is_floating(dtype), "module", "to(", dtype_name(dtype), "): parameters are float32 or float64");
  NoGradGuard no_grad;
  for (auto* list : {&parameters_, &buffers_})
    for (auto& [name, t] : *list)
      if (is_floating(t.dtype()) && t.dtype() != dtype) rebind(t, t.detach().to(dtype));
  for (auto& [name, child] : children_) child->to(dtype);
}

void Module::reset_parameters(uint64_t, uint64_t) {}

uint64_t Module::reset_tree(uint64_t seed, uint64_t first_stream) {
  reset_parameters(seed, first_stream);
  uint64_t next = first_stream + parameters_.size();
  for (auto& [name, child] : children_) next = child->reset_tree(seed, next);
  return next;
}

void initialize(Module& root, uint64_t seed) { root.reset_tree(seed, 0); }

}  // namespace lethe::nn
