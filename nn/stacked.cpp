#include "nn/stacked.h"

#include <algorithm>

#include "engine/autograd.h"
#include "engine/error.h"
#include "nn/layers.h"
#include "nn/optim.h"

namespace lethe::nn {

namespace {

using detail::StackedLayer;
using Kind = StackedLayer::Kind;
using Input = StackedLayer::Input;

// Where the activations stand while walking the layers: still the shared input (nothing per
// model yet: stateless layers run on it once), channel-stacked, or model-major.
enum class Layout { shared, channels, models };

// The layers of `network` with what each needs of its input; or, in `why`, the reason it cannot
// be stacked (then the layers are incomplete).
std::vector<StackedLayer> plan(const Module& network, std::string& why) {
  const auto* sequential = dynamic_cast<const Sequential*>(&network);
  if (sequential == nullptr) {
    why = "it is not a Sequential of Conv2d, BatchNorm2d, ReLU, MaxPool2d, Flatten and Linear layers";
    return {};
  }
  std::vector<StackedLayer> layers;
  Layout layout = Layout::shared;
  for (const auto& [name, module] : sequential->layers()) {
    StackedLayer l;
    l.name = name;
    l.single = module;
    const Module* m = module.get();
    const auto refuse = [&, &layer_name = name](const char* layer, const char* reason) {  // clang 14: no binding capture
      why = lethe::detail::concat("layer '", layer_name, "' (", layer, ") ", reason);
      return layers;
    };
    const char* after_flatten = "comes after the flatten";
    if (const auto* conv = dynamic_cast<const Conv2d*>(m)) {
      if (layout == Layout::models) return refuse("Conv2d", after_flatten);
      l.kind = Kind::conv;
      l.conv = conv->options();
    } else if (const auto* bn = dynamic_cast<const BatchNorm2d*>(m)) {
      if (layout == Layout::models) return refuse("BatchNorm2d", after_flatten);
      l.kind = Kind::batch_norm;
      l.eps = bn->eps();
      l.momentum = bn->momentum();
    } else if (dynamic_cast<const Linear*>(m) != nullptr) {
      if (layout == Layout::channels) return refuse("Linear", "gets unflattened activations");
      l.kind = Kind::linear;
      l.input = layout == Layout::shared ? Input::broadcast : Input::as_is;
      layout = Layout::models;
    } else if (const auto* flatten = dynamic_cast<const Flatten*>(m)) {
      if (flatten->start_dim() != 1) return refuse("Flatten", "does not start at dim 1");
      if (layout == Layout::models) return refuse("Flatten", "flattens twice");
      if (layout == Layout::channels) {
        l.kind = Kind::split;
        layout = Layout::models;
      }
    } else if (dynamic_cast<const MaxPool2d*>(m) != nullptr) {
      if (layout == Layout::models) return refuse("MaxPool2d", after_flatten);
    } else if (dynamic_cast<const ReLU*>(m) == nullptr) {
      why = "layer '" + name + "' is not a Conv2d, BatchNorm2d, ReLU, MaxPool2d, Flatten or Linear";
      return layers;
    }
    if (l.kind == Kind::conv || l.kind == Kind::batch_norm) {
      // The first layer with per-model state gets the shared input once per model.
      if (layout == Layout::shared) l.input = Input::replicate;
      layout = Layout::channels;
    }
    layers.push_back(l);
  }
  if (layout != Layout::models) why = "it does not end in model-major activations (a Linear after the flatten)";
  return layers;
}

// `spec`'s network in its dtype: the template the states' dtypes are checked against.
std::shared_ptr<Module> network_of(const ModelSpec& spec) {
  std::shared_ptr<Module> network = build_network(spec);
  network->to(spec.dtype);
  return network;
}

}  // namespace

bool stackable(const Module& network) {
  std::string why;
  plan(network, why);
  return why.empty();
}

bool stackable(const ModelSpec& spec) { return stackable(*build_network(spec)); }

StackedModel::StackedModel(const ModelSpec& spec, const std::vector<NamedTensors>& states, Device device,
                           int grad_buffers)
    : StackedModel(spec, network_of(spec), states, device, grad_buffers) {}

StackedModel::StackedModel(std::shared_ptr<Module> network, const std::vector<NamedTensors>& states,
                           Device device, int grad_buffers)
    : StackedModel(ModelSpec{.name = ""}, std::move(network), states, device, grad_buffers) {}

StackedModel::StackedModel(const ModelSpec& spec, std::shared_ptr<Module> network,
                           const std::vector<NamedTensors>& states, Device device, int grad_buffers)
    : spec_(spec), device_(device), models_(static_cast<int64_t>(states.size())), network_(std::move(network)) {
  const std::string what = spec_.name.empty() ? "the network" : spec_.name;
  LETHE_CHECK(network_ != nullptr, "StackedModel", "no network");
  std::string why;
  layers_ = plan(*network_, why);
  LETHE_CHECK(why.empty(), "StackedModel", what, " cannot be stacked: ", why);
  LETHE_CHECK(models_ > 0, "StackedModel", "no models to stack (0 state dicts given)");
  single_state_ = network_->state_dict();
  std::vector<std::vector<Tensor>> given;  // [model][entry], in single_state_'s order
  for (int64_t n = 0; n < models_; ++n)
    given.push_back(match_state(lethe::detail::concat("StackedModel: model ", n, " of ", models_, " (", what, ")"),
                                single_state_, states[static_cast<size_t>(n)]));

  NoGradGuard no_grad;
  for (size_t e = 0; e < single_state_.size(); ++e) {
    const auto& [name, single] = single_state_[e];
    std::vector<Tensor> values;
    for (const auto& model : given) values.push_back(model[e].detach().to(device_));
    Tensor t = stack(values, 0);  // [N, single shape]
    // A Sequential's entries are "<layer>.<tensor>". Conv and BatchNorm tensors merge the model
    // dim into their channel dim, the layout of the channel-stacked activations.
    const std::string layer = name.substr(0, name.find('.'));
    const auto it = std::find_if(layers_.begin(), layers_.end(), [&](const auto& l) { return l.name == layer; });
    if ((it->kind == Kind::conv || it->kind == Kind::batch_norm) && single.dim() > 0) t = t.flatten(0, 1);
    state_.emplace_back(name, t);
  }

  std::vector<Tensor> params, stand_ins;
  for (const auto& [name, p] : network_->named_parameters()) {
    params.push_back(Tensor(stacked(name)).set_requires_grad());
    stand_ins.push_back(Tensor::zeros(p.shape(), p.dtype()).set_requires_grad());
  }
  arena_ = ParamArena(params, grad_buffers);
  single_arena_ = ParamArena(stand_ins, 0);

  for (auto& l : layers_) {
    l.weight = stacked(l.name + ".weight");
    l.bias = stacked(l.name + ".bias");
    l.running_mean = stacked(l.name + ".running_mean");
    l.running_var = stacked(l.name + ".running_var");
    l.batches_tracked = stacked(l.name + ".num_batches_tracked");
    l.conv.groups *= static_cast<int>(models_);
  }
}

const Tensor& StackedModel::stacked(const std::string& name) const {
  static const Tensor none;
  for (const auto& [n, t] : state_)
    if (n == name) return t;
  return none;
}

Tensor StackedModel::forward(const Tensor& images) {
  LETHE_CHECK(images.defined() && images.dim() == 4 && images.device() == device_, "StackedModel",
              "expects images [B,C,H,W] on ", device_.str(), ", got ", images.defined() ? images.str() : "undefined");
  // The loaders give float32: a float64 stack reads the images widened, as nn::Model does.
  const DType dtype = arena_.data().dtype();
  Tensor h = images.dtype() == dtype ? images : images.to(dtype);
  for (const auto& l : layers_) {
    if (l.input == Input::replicate) h = concat(std::vector<Tensor>(static_cast<size_t>(models_), h), 1);
    if (l.input == Input::broadcast) {  // a stride-0 view: GEMM reads the one batch for every model
      Shape shape = h.shape();
      shape.insert(0, models_);
      h = h.unsqueeze(0).expand(shape);
    }
    switch (l.kind) {
      case Kind::conv: h = conv2d(h, l.weight, l.bias, l.conv); break;
      case Kind::batch_norm:
        if (training_) {
          NoGradGuard no_grad;
          Tensor(l.batches_tracked).add_(Tensor::ones({models_}, DType::i64, device_));
        }
        h = batch_norm(h, l.weight, l.bias, l.running_mean, l.running_var, training_, l.momentum, l.eps);
        break;
      case Kind::linear: h = linear(h, l.weight, l.bias); break;
      case Kind::split: {  // [B, N·F] holds model n's features contiguously: view as [B, N, F], then [N, B, F]
        const Tensor flat = h.flatten(1);
        h = flat.view({flat.size(0), models_, flat.size(1) / models_}).transpose(0, 1);
        break;
      }
      case Kind::stateless: h = l.single->forward(h); break;
    }
  }
  return h.contiguous();
}

NamedTensors StackedModel::state_dict(int64_t n) const {
  LETHE_CHECK(n >= 0 && n < models_, "StackedModel::state_dict", "no model ", n, " (", models_, " stacked)");
  NoGradGuard no_grad;
  NamedTensors out;
  for (size_t e = 0; e < state_.size(); ++e) {
    Shape shape = single_state_[e].second.shape();
    shape.insert(0, models_);
    out.emplace_back(state_[e].first, state_[e].second.detach().view(shape).select(0, n).clone());
  }
  return out;
}

NamedTensors StackedModel::parameters(int64_t n) const {
  NamedTensors all = state_dict(n), out;
  const NamedTensors params = network_->named_parameters();
  for (auto& [name, t] : all)
    if (std::any_of(params.begin(), params.end(), [&n = name](const auto& p) { return p.first == n; }))
      out.emplace_back(name, std::move(t));
  return out;
}

Tensor StackedModel::model_flat(const Tensor& stacked_flat, int64_t n) const {
  LETHE_CHECK(n >= 0 && n < models_, "StackedModel::model_flat", "no model ", n, " (", models_, " stacked)");
  LETHE_CHECK(stacked_flat.defined() && stacked_flat.shape() == Shape{arena_.size()}, "StackedModel::model_flat",
              "expects a flat buffer [", arena_.size(), "] laid out like the stacked arena, got ",
              stacked_flat.defined() ? stacked_flat.str() : "undefined");
  NoGradGuard no_grad;
  const Tensor src = stacked_flat.detach();
  Tensor out = Tensor::zeros({single_arena_.size()}, src.dtype(), src.device());
  for (size_t i = 0; i < single_arena_.params().size(); ++i) {
    const int64_t count = single_arena_.params()[i].numel();
    out.narrow(0, single_arena_.offset(i), count).copy_(src.narrow(0, arena_.offset(i) + n * count, count));
  }
  return out;
}

Tensor StackedModel::stack_flat(const std::vector<Tensor>& single_flats) const {
  LETHE_CHECK(static_cast<int64_t>(single_flats.size()) == models_, "StackedModel::stack_flat", "expects ",
              models_, " single-model buffers, got ", single_flats.size());
  for (size_t n = 0; n < single_flats.size(); ++n) {
    const Tensor& f = single_flats[n];
    LETHE_CHECK(f.defined() && f.shape() == Shape{single_arena_.size()} && f.dtype() == single_flats[0].dtype() &&
                    f.device() == single_flats[0].device(),
                "StackedModel::stack_flat", "buffer ", n, " is ", f.defined() ? f.str() : "undefined",
                ", expected [", single_arena_.size(), "] (a single model's arena) in buffer 0's dtype and device");
  }
  NoGradGuard no_grad;
  Tensor out = Tensor::zeros({arena_.size()}, single_flats[0].dtype(), device_);
  for (int64_t n = 0; n < models_; ++n) {
    const Tensor src = single_flats[static_cast<size_t>(n)].detach();
    for (size_t i = 0; i < single_arena_.params().size(); ++i) {
      const int64_t count = single_arena_.params()[i].numel();
      out.narrow(0, arena_.offset(i) + n * count, count).copy_(src.narrow(0, single_arena_.offset(i), count));
    }
  }
  return out;
}

StackedLoss stacked_cross_entropy(const Tensor& logits, const Tensor& labels, bool labels_checked) {
  LETHE_CHECK(logits.defined() && logits.dim() == 3 && logits.size(0) > 0, "stacked_cross_entropy",
              "expects logits [N,B,classes] with N >= 1, got ", logits.defined() ? logits.str() : "undefined");
  // One cross_entropy per model on its slice: the single model's kernel and 1/B scale. The
  // slices' gradients land in disjoint parts of the logits' gradient (the rest zeros, which add
  // exactly), and the sum passes each loss a gradient of exactly 1. The labels are range-checked
  // once, with model 0's loss: every model reads the same labels.
  std::vector<Tensor> losses;
  CrossEntropyOptions opt;
  for (int64_t n = 0; n < logits.size(0); ++n) {
    opt.labels_checked = labels_checked || n > 0;
    losses.push_back(cross_entropy(logits.select(0, n), labels, opt));
  }
  const Tensor all = stack(losses, 0);
  return {sum(all), all.detach()};
}

}  // namespace lethe::nn
