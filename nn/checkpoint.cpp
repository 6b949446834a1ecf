#include "nn/checkpoint.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "engine/safetensors.h"
#include "engine/version.h"

namespace lethe::nn {

namespace {

constexpr const char* kFormat = "lethe-checkpoint-1";
// Metadata keys this file writes; anything else is carried in `extra`.
constexpr const char* kKnownKeys[] = {"format", "lethe_version", "model", "dataset", "recipe", "epoch", "step", "seed"};

nlohmann::json spec_json(const ModelSpec& s) {
  return {{"name", s.name}, {"in_channels", s.in_channels}, {"image_size", s.image_size}, {"classes", s.classes},
          {"width", s.width}};
}

template <class T>
T parse_number(const std::string& path, const std::string& key, const std::string& text) {
  try {
    return nlohmann::json::parse(text).get<T>();
  } catch (const nlohmann::json::exception&) {
    LETHE_FAIL("checkpoint", path, ": metadata '", key, "' is not a valid number: '", text, "'");
  }
}

CheckpointInfo parse_info(const std::string& path, const std::map<std::string, std::string>& meta) {
  auto get = [&](const char* key) -> const std::string& {
    const auto it = meta.find(key);
    LETHE_CHECK(it != meta.end(), "checkpoint", path, ": metadata has no '", key, "'");
    return it->second;
  };
  LETHE_CHECK(get("format") == kFormat, "checkpoint", path, ": unknown format '", get("format"), "' (expected ",
              kFormat, ")");
  CheckpointInfo info;
  try {
    const nlohmann::json m = nlohmann::json::parse(get("model"));
    info.model.name = m.at("name").get<std::string>();
    info.model.in_channels = m.at("in_channels").get<int64_t>();
    info.model.image_size = m.at("image_size").get<int64_t>();
    info.model.classes = m.at("classes").get<int64_t>();
    info.model.width = m.at("width").get<double>();
    if (meta.count("recipe")) info.recipe = nlohmann::json::parse(meta.at("recipe")).get<Recipe>();
  } catch (const nlohmann::json::exception& e) {
    LETHE_FAIL("checkpoint", path, ": bad model or recipe metadata: ", e.what());
  }
  if (meta.count("dataset")) info.dataset = meta.at("dataset");
  info.epoch = parse_number<int64_t>(path, "epoch", get("epoch"));
  info.step = parse_number<int64_t>(path, "step", get("step"));
  info.seed = parse_number<uint64_t>(path, "seed", get("seed"));
  for (const auto& [key, value] : meta)
    if (std::find(std::begin(kKnownKeys), std::end(kKnownKeys), key) == std::end(kKnownKeys))
      info.extra[key] = value;
  return info;
}

}  // namespace

void save_checkpoint(const std::string& path, const Model& model, const Optimizer* optimizer,
                     const CheckpointInfo& info) {
  NamedTensors tensors = model.net().state_dict();
  if (optimizer)
    for (const auto& [name, t] : optimizer->state()) tensors.emplace_back(kOptimizerPrefix + name, t);
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

Checkpoint load_checkpoint(const std::string& path, const std::optional<ModelSpec>& fallback) {
  SafetensorsFile file = load_safetensors(path);
  Checkpoint c;
  if (file.metadata.count("format")) {
    c.info = parse_info(path, file.metadata);
  } else {
    LETHE_CHECK(fallback.has_value(), "checkpoint", path,
                ": no lethe metadata (a plain state dict?); say which model it holds (--model)");
    c.info.model = *fallback;
    c.info.extra = file.metadata;
  }
  const std::string prefix = kOptimizerPrefix;
  for (auto& [name, t] : file.tensors) {
    if (name.compare(0, prefix.size(), prefix) == 0)
      c.optimizer_state.emplace_back(name.substr(prefix.size()), t);
    else
      c.model_state.emplace_back(name, t);
  }
  return c;
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
