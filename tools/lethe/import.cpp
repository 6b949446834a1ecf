// lethe import: makes a lethe checkpoint of a plain state dict (a model trained elsewhere, PyTorch's
// state dict saved as safetensors). Every tensor is checked against the model (names, shapes,
// dtypes; float64 and bfloat16 weights become float32, and the report says which), the metadata
// names the model, the data set and, when given, the training recipe (so that `lethe unlearn
// --method retrain` can retrain it), and the imported model's test accuracy is reported as a check.
#include <fmt/core.h>

#include <map>
#include <set>

#include "commands.h"
#include "unlearn/study/common.h"
#include "engine/error.h"
#include "engine/file.h"
#include "engine/version.h"
#include "nn/checkpoint.h"
#include "nn/option_json.h"
#include "nn/train.h"
#include "unlearn/study/option_flags.h"
#include "unlearn/study/option_range.h"
#include "subcommand.h"
#include "unlearn/study/toml_config.h"

namespace lethe::cli {

namespace {

struct ImportOptions {
  RunOptions run;
  std::string from, out, recipe_file;
  ModelFlags model;
  uint64_t seed = 0;
  nn::Recipe recipe;
  std::vector<CLI::Option*> recipe_flags;
};

// The recipe of a TOML file: a study config's [train] table, or else the file's top-level keys
// (a `lethe train --config` file), each a flag of `lethe train`'s recipe.
nn::Recipe read_recipe(const std::string& path) {
  const std::string text = read_file(path, "import");
  if (const auto unsafe = toml_unsafe_text(text)) LETHE_FAIL("import", "--recipe ", path, ": TOML error at ", *unsafe);
  toml::table file;
  try {
    file = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    LETHE_FAIL("import", "--recipe ", path, ": TOML error at line ", e.source().begin.line, ", column ",
               e.source().begin.column, ": ", excerpt(std::string(e.description()), 200));
  }
  const toml::table* table = file["train"].as_table();
  const std::string where = fmt::format("import --recipe {}{}", path, table ? " [train]" : "");
  if (table == nullptr) table = &file;
  CLI::App app;
  nn::Recipe recipe;
  add_option_flags(app, recipe, nn::recipe_options());
  parse_flags(app, table_flags(*table, where), where);
  return recipe;
}

// The state dict as the model's tensors: every name and shape the model has, and no other; float64
// and BF16-stored weights converted to float32 (returned in `converted`: name -> the file's dtype).
NamedTensors match_model(const nn::Checkpoint& c, const nn::Model& model, const std::string& path,
                         std::map<std::string, std::string>& converted) {
  std::map<std::string, Tensor> given;
  for (const auto& [name, t] : c.model_state) given.emplace(name, t);
  for (const auto& [name, t] : c.optimizer_state) given.emplace(nn::kOptimizerPrefix + name, t);
  std::string missing, mismatched;
  std::set<std::string> expected;
  NamedTensors out;
  for (const auto& [name, want] : model.net().state_dict()) {
    expected.insert(name);
    const auto it = given.find(name);
    if (it == given.end()) {
      missing += fmt::format(" {} {}", name, want.shape().str());
      continue;
    }
    const Tensor& t = it->second;
    const bool f64_weight = t.dtype() == DType::f64 && want.dtype() == DType::f32;
    if (t.shape() != want.shape() || (t.dtype() != want.dtype() && !f64_weight)) {
      mismatched += fmt::format(" {} ({} {}, the model's {} {})", name, dtype_name(t.dtype()), t.shape().str(),
                                dtype_name(want.dtype()), want.shape().str());
      continue;
    }
    if (f64_weight) converted[name] = "F64";
    if (c.widened.count(name)) converted[name] = c.widened.at(name);
    out.emplace_back(name, t.to(want.dtype()));
  }
  std::string unexpected;
  for (const auto& [name, t] : given)
    if (!expected.count(name)) unexpected += " " + name;
  LETHE_CHECK(missing.empty() && unexpected.empty(), "import", path, " does not hold a ", model.spec().name, ":",
              missing.empty() ? "" : " missing", missing, unexpected.empty() ? "" : "; not in the model", unexpected,
              " (README, \"Coming from PyTorch\", lists each model's names)");
  LETHE_CHECK(mismatched.empty(), "import", path, ": wrong shape or dtype for the ", model.spec().name, ":", mismatched);
  return out;
}

void run_import(const ImportOptions& o) {
  const CommandRun command("import", o.run);
  const Device device = command.device();
  size_t recipe_flags = 0;
  for (const CLI::Option* flag : o.recipe_flags) recipe_flags += flag->count() > 0;
  LETHE_CHECK(o.recipe_file.empty() || recipe_flags == 0, "import",
              "give the recipe as --recipe FILE or as training flags, not both");
  std::optional<nn::Recipe> recipe;
  if (!o.recipe_file.empty()) recipe = read_recipe(o.recipe_file);
  if (recipe_flags > 0) recipe = o.recipe;
  if (recipe) recipe->validate();

  // The test set gives the image geometry, and the imported model's accuracy as a check.
  const DataSource source = load_data(o.run, false, true);
  const nn::ModelSpec spec = model_spec(o.model.model, o.model.width, source);
  check_outputs("import", {{"--out", o.out}}, {{"--from", o.from}, {"--recipe", o.recipe_file}});
  const nn::Checkpoint c = nn::load_checkpoint(o.from, spec);
  LETHE_CHECK(c.plain, "import", o.from, " is a lethe checkpoint already (of a ", c.info.model.name,
              "): every command reads it as it is");

  nn::Model model(spec, o.seed, device);
  std::map<std::string, std::string> converted;
  model.net().load_state_dict(match_model(c, model, o.from, converted));
  nn::CheckpointInfo info{spec, source.name, recipe, 0, 0, o.seed, {{"imported_from", o.from}}};
  nn::save_checkpoint(o.out, model, nullptr, info);

  data::DataLoader loader = eval_loader(source.test, source, device);
  const nn::Evaluation test = nn::evaluate(model, loader);
  nlohmann::json result = command.result();
  result.update({{"checkpoint", o.out},
                 {"from", o.from},
                 {"model", spec.name},
                 {"dataset", source.name},
                 {"tensors", c.model_state.size()},
                 {"converted", converted},
                 {"recipe", recipe ? nlohmann::json(*recipe) : nlohmann::json()},
                 {"seed", o.seed},
                 {"test_accuracy", test.accuracy},
                 {"test_loss", test.mean_loss},
                 {"lethe_version", version()}});
  result["wall_seconds"] = command.wall_seconds();
  std::string text = fmt::format("imported {} tensors of a {} from {}\n", c.model_state.size(), spec.name, o.from);
  for (const auto& [name, dtype] : converted) text += fmt::format("  {}: {} converted to float32\n", name, dtype);
  text += recipe ? std::string("training recipe recorded: `lethe unlearn --method retrain` retrains with it\n")
                 : std::string("no training recipe: `lethe unlearn --method retrain` refuses this checkpoint (give "
                               "--recipe FILE or the training flags to record one)\n");
  text += fmt::format("test accuracy: {:.4f}\ntest loss: {:.4f}\ncheckpoint: {}\n", test.accuracy, test.mean_loss, o.out);
  command.print(result, text);
}

}  // namespace

void add_import_command(CLI::App& app) {
  add_data_command<ImportOptions>(
      app, "import", "make a lethe checkpoint of a plain state dict (e.g. a PyTorch model saved as safetensors)",
      [](CLI::App& cmd, ImportOptions& o) {
        cmd.add_option("--from", o.from, "the state dict (safetensors, no lethe metadata)")->required();
        cmd.add_option("--out", o.out, "lethe checkpoint to write (safetensors, atomically)")->required();
        add_model_flags(cmd, o.model);
        cmd.get_option("--model")->required();
        cmd.add_option("--seed", o.seed, "the seed `lethe unlearn --method retrain` initialises with")
            ->check(range_check(seed_range()))
            ->capture_default_str();
        cmd.add_option("--recipe", o.recipe_file,
                       "the training recipe, for retrain: a TOML file of `lethe train` flags, or a study config "
                       "(its [train] table); or give the training flags below");
        o.recipe_flags = add_option_flags(cmd, o.recipe, nn::recipe_options());
      },
      run_import);
}

}  // namespace lethe::cli
