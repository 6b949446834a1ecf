#include "nn/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/file.h"
#include "engine/json.h"
#include "engine/safetensors.h"
#include "engine/version.h"

namespace lethe::nn {

namespace {

constexpr const char* kFormat = "lethe-checkpoint-1";
// Metadata keys this file writes; anything else is carried in `extra`.
constexpr const char* kKnownKeys[] = {"format", "lethe_version", "model", "dataset", "recipe", "epoch", "step", "seed"};

nlohmann::json spec_json(const ModelSpec& s) {
  nlohmann::json j = {{"name", s.name},       {"in_channels", s.in_channels}, {"image_size", s.image_size},
                      {"classes", s.classes}, {"width", s.width},             {"dtype", std::string(dtype_name(s.dtype))}};
  if (s.input_pool != 1) j["input_pool"] = s.input_pool;  // linear's; absent means 1
  return j;
}

// The model's floating dtype by name; files from before models had one say nothing: float32.
DType parse_model_dtype(const nlohmann::json& value, const std::string& what) {
  for (const DType d : {DType::f32, DType::f64})
    if (value.is_string() && value.get<std::string>() == dtype_name(d)) return d;
  throw Error(what + ": dtype must be \"float32\" or \"float64\", got " + json_excerpt(value));
}

// Every floating tensor of the state holds the spec's dtype: a model of one dtype is packed into
// one arena, and load_state_dict would refuse the mix later with less to go on.
void check_state_dtype(const NamedTensors& state, const ModelSpec& spec, const std::string& path) {
  for (const auto& [name, t] : state)
    LETHE_CHECK(!is_floating(t.dtype()) || t.dtype() == spec.dtype, "checkpoint", path, ": tensor ", name, " is ",
                dtype_name(t.dtype()), " but the model metadata says ", dtype_name(spec.dtype));
}

// A metadata value that holds a non-negative integer (as save_checkpoint writes it).
uint64_t parse_number(const std::string& path, const std::string& key, const std::string& text, uint64_t max) {
  const std::string what = detail::concat("checkpoint: ", path, ": metadata '", key, "'");
  try {
    return json_uint(parse_json(text, what), what, max);
  } catch (const Error&) {
    LETHE_FAIL("checkpoint", path, ": metadata '", key, "' is not an integer in [0, ", max, "]: ", excerpt(text));
  }
}

CheckpointInfo parse_info(const std::string& path, const std::map<std::string, std::string>& meta) {
  auto get = [&](const char* key) -> const std::string& {
    const auto it = meta.find(key);
    LETHE_CHECK(it != meta.end(), "checkpoint", path, ": metadata has no '", key, "'");
    return it->second;
  };
  LETHE_CHECK(get("format") == kFormat, "checkpoint", path, ": unknown format ", excerpt(get("format"), 80, '\''),
              " (expected ", kFormat, ")");
  CheckpointInfo info;
  try {
    const std::string model = "metadata 'model'";
    const nlohmann::json m = parse_json(get("model"), model);
    if (!m.is_object()) throw Error(model + " must be an object, got " + json_excerpt(m));
    auto at = [&](const char* key) -> const nlohmann::json& {
      if (!m.contains(key)) throw Error(detail::concat(model, " has no '", key, "'"));
      return m.at(key);
    };
    if (!at("name").is_string()) throw Error(model + ": name must be a string, got " + json_excerpt(at("name")));
    info.model.name = at("name").get<std::string>();
    info.model.in_channels = json_int(at("in_channels"), model + ": in_channels");
    info.model.image_size = json_int(at("image_size"), model + ": image_size");
    info.model.classes = json_int(at("classes"), model + ": classes");
    if (!at("width").is_number()) throw Error(model + ": width must be a number, got " + json_excerpt(at("width")));
    info.model.width = at("width").get<double>();
    if (m.contains("dtype")) info.model.dtype = parse_model_dtype(m.at("dtype"), model);
    if (m.contains("input_pool")) info.model.input_pool = json_int(m.at("input_pool"), model + ": input_pool");
    if (meta.count("recipe"))
      info.recipe = parse_json(meta.at("recipe"), "metadata 'recipe'").get<Recipe>();
  } catch (const Error& e) {
    LETHE_FAIL("checkpoint", path, ": bad model or recipe metadata: ", e.what());
  } catch (const nlohmann::json::exception& e) {
    LETHE_FAIL("checkpoint", path, ": bad model or recipe metadata: ", e.what());
  }
  if (meta.count("dataset")) info.dataset = meta.at("dataset");
  constexpr auto kInt64Max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  info.epoch = static_cast<int64_t>(parse_number(path, "epoch", get("epoch"), kInt64Max));
  info.step = static_cast<int64_t>(parse_number(path, "step", get("step"), kInt64Max));
  info.seed = parse_number(path, "seed", get("seed"), std::numeric_limits<uint64_t>::max());
  for (const auto& [key, value] : meta)
    if (std::find(std::begin(kKnownKeys), std::end(kKnownKeys), key) == std::end(kKnownKeys))
      info.extra[key] = value;
  return info;
}

// Refuses the first tensor of `tensors` holding a NaN or ±inf: "WHAT: tensor NAME has ... at element I".
void check_finite(const NamedTensors& tensors, const std::string& what, const std::string& prefix = "") {
  for (const auto& [name, t] : tensors) {
    if (!is_floating(t.dtype())) continue;
    const Tensor host = t.to(Device::cpu()).contiguous();
    auto first_bad = [&](const auto* x) -> int64_t {
      for (int64_t i = 0; i < host.numel(); ++i)
        if (!std::isfinite(x[i])) return i;
      return -1;
    };
    const int64_t bad = host.dtype() == DType::f32 ? first_bad(host.data<float>()) : first_bad(host.data<double>());
    if (bad < 0) continue;
    const double value = host.dtype() == DType::f32 ? host.data<float>()[bad] : host.data<double>()[bad];
    LETHE_FAIL("checkpoint", what, ": tensor ", prefix, name, " holds ", value, " at element ", bad, " of ",
               host.numel(), " (a diverged or corrupted model)");
  }
}

// PyTorch's own files (torch.save: a zip archive; a bare pickle before PyTorch 1.6) run code when
// unpickled. lethe never reads them: it says so, and how to save the state dict as safetensors. A
// file is taken for one only when its first 8 bytes, read as a safetensors header length, point
// past its end: a safetensors file is never refused.
void refuse_pickle(const std::string& bytes, const std::string& path) {
  if (bytes.size() < 8) return;
  uint64_t header = 0;
  for (int i = 0; i < 8; ++i) header |= uint64_t{static_cast<uint8_t>(bytes[i])} << (8 * i);
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(bytes[i]); };
  const bool zip = bytes.compare(0, 4, "PK\x03\x04") == 0;
  const bool pickle = byte(0) == 0x80 && byte(1) >= 2 && byte(1) <= 5;  // PROTO 2..5
  LETHE_CHECK(header <= bytes.size() - 8 || !(zip || pickle), "checkpoint", path,
              ": a PyTorch pickle file (torch.save), which lethe never unpickles; save the state dict as safetensors "
              "instead: python3 -c 'import torch, safetensors.torch as st; st.save_file(torch.load(\"", path,
              "\", weights_only=True), \"model.safetensors\")' (or st.save_file(model.state_dict(), "
              "\"model.safetensors\") where the model is built), then `lethe import --from model.safetensors ...`");
}

}  // namespace

void save_checkpoint(const std::string& path, const Model& model, const Optimizer* optimizer,
                     const CheckpointInfo& info) {
  NamedTensors tensors = model.net().state_dict();
  if (optimizer)
    for (const auto& [name, t] : optimizer->state()) tensors.emplace_back(kOptimizerPrefix + name, t);
  check_finite(tensors, path + " not written");
  std::map<std::string, std::string> meta = info.extra;
  meta["format"] = kFormat;
  meta["lethe_version"] = version();
  meta["model"] = spec_json(model.spec()).dump();
  if (!info.dataset.empty()) meta["dataset"] = info.dataset;
  if (info.recipe) meta["recipe"] = nlohmann::json(*info.recipe).dump();
  meta["epoch"] = std::to_string(info.epoch);
  meta["step"] = std::to_string(info.step);
  meta["seed"] = std::to_string(info.seed);
  save_safetensors(path, tensors, meta);
}

Checkpoint load_checkpoint(const std::string& path, const std::optional<ModelSpec>& fallback, NonFinite nonfinite) {
  const std::string bytes = read_file(path, "safetensors");
  refuse_pickle(bytes, path);
  SafetensorsFile file = parse_safetensors(bytes, path);
  Checkpoint c;
  if (file.metadata.count("format")) {
    c.info = parse_info(path, file.metadata);
  } else {
    LETHE_CHECK(fallback.has_value(), "checkpoint", path,
                ": no lethe metadata (a plain state dict, e.g. from PyTorch?): say which model it holds with --model "
                "NAME (and --width for resnet18c), or make it a lethe checkpoint once with `lethe import`");
    c.info.model = *fallback;
    c.info.extra = file.metadata;
    c.plain = true;
  }
  c.widened = file.widened;
  const std::string prefix = kOptimizerPrefix;
  for (auto& [name, t] : file.tensors) {
    if (name.compare(0, prefix.size(), prefix) == 0)
      c.optimizer_state.emplace_back(name.substr(prefix.size()), t);
    else
      c.model_state.emplace_back(name, t);
  }
  if (!c.plain) check_state_dtype(c.model_state, c.info.model, path);
  if (nonfinite == NonFinite::refuse) {
    check_finite(c.model_state, path);
    check_finite(c.optimizer_state, path, prefix);
  }
  return c;
}

void check_fits_data(const CheckpointInfo& info, const std::string& path, const DataShape& data) {
  const ModelSpec& m = info.model;
  LETHE_CHECK(info.dataset.empty() || info.dataset == data.dataset, "checkpoint", path, ": trained on ",
              excerpt(info.dataset, 40), ", not on ", data.dataset);
  LETHE_CHECK(m.in_channels == data.channels && m.image_size == data.image_size && m.classes == data.classes,
              "checkpoint", path, ": its ", excerpt(m.name, 40), " takes ", m.in_channels, "x", m.image_size, "x", m.image_size,
              " images and ", m.classes, " classes; ", data.dataset, " has ", data.channels, "x", data.image_size,
              "x", data.image_size, " and ", data.classes);
}

Model load_model(const Checkpoint& checkpoint, Device device, int grad_buffers) {
  Model model(checkpoint.info.model, checkpoint.info.seed, device, grad_buffers);
  try {
    model.net().load_state_dict(checkpoint.model_state);
  } catch (const Error& e) {
    LETHE_FAIL("checkpoint", "does not fit model ", checkpoint.info.model.name, ": ", e.what());
  }
  return model;
}

}  // namespace lethe::nn
