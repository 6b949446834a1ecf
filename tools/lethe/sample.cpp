// lethe sample: images from a generator checkpoint (cvae, ddpm-s), conditioned on a class: a grid
// picture (PNG) and, with --tensors, the images themselves as safetensors.
#include <fmt/core.h>

#include "commands.h"
#include "engine/error.h"
#include "engine/file.h"
#include "engine/safetensors.h"
#include "nn/checkpoint.h"
#include "nn/data/png.h"
#include "nn/generative.h"
#include "unlearn/study/common.h"
#include "unlearn/study/option_range.h"
#include "subcommand.h"

namespace lethe::cli {

namespace {

struct SampleOptions {
  RunOptions run;
  std::string checkpoint, out, tensors;
  int64_t class_index = 0, count = 64, columns = 16;
  uint64_t seed = 0;
};

void run_sample(const SampleOptions& o) {
  const CommandRun command("sample", o.run);
  const nn::Checkpoint checkpoint = nn::load_checkpoint(o.checkpoint);
  const nn::ModelSpec& spec = checkpoint.info.model;
  LETHE_CHECK(nn::is_generator_name(spec.name), "sample", o.checkpoint, " holds a ", spec.name,
              ", a classifier: sampling needs a generator checkpoint (cvae, ddpm-s; lethe train --model cvae)");
  LETHE_CHECK(o.class_index < spec.classes, "sample", "--class ", o.class_index, " is not one of the ", spec.classes,
              " classes of ", o.checkpoint, " (0 to ", spec.classes - 1, ")");
  check_outputs("sample", {{"--out", o.out}, {"--tensors", o.tensors}}, {{"--checkpoint", o.checkpoint}});
  nn::Model model = nn::load_model(checkpoint, command.device());
  const std::vector<int64_t> labels(static_cast<size_t>(o.count), o.class_index);
  const Tensor images = nn::generate(model, labels, o.seed);
  write_file_atomically(o.out, data::encode_png(data::image_grid(images, o.columns)), "sample");
  const std::map<std::string, std::string> metadata = {
      {"checkpoint", o.checkpoint}, {"model", spec.name}, {"class", std::to_string(o.class_index)},
      {"seed", std::to_string(o.seed)}};
  if (!o.tensors.empty())
    save_safetensors(o.tensors, {{"images", images.to(DType::f32)}, {"labels", Tensor::from_vector(labels, {o.count})}},
                     metadata);
  nlohmann::json result = command.result();
  result["checkpoint"] = o.checkpoint;
  result["model"] = spec.name;
  result["class"] = o.class_index;
  result["count"] = o.count;
  result["seed"] = o.seed;
  result["picture"] = o.out;
  result["tensors"] = o.tensors.empty() ? nlohmann::json() : nlohmann::json(o.tensors);
  result["wall_seconds"] = command.wall_seconds();
  command.print(result, fmt::format("{} samples of class {} from {} ({}): {}{}\n", o.count, o.class_index, spec.name,
                                    o.checkpoint, o.out, o.tensors.empty() ? "" : ", " + o.tensors));
}

}  // namespace

void add_sample_command(CLI::App& app) {
  add_data_command<SampleOptions>(
      app, "sample", "draw images of one class from a generator checkpoint: a PNG grid (and the tensors)",
      [](CLI::App& cmd, SampleOptions& o) {
        cmd.add_option("--checkpoint", o.checkpoint, "generator checkpoint (cvae, ddpm-s)")->required();
        cmd.add_option("--class", o.class_index, "the class to draw")
            ->required()
            ->check(range_check(integer_in(0, 1 << 20)));
        cmd.add_option("--count", o.count, "images to draw")
            ->check(range_check(integer_in(1, 100000)))
            ->capture_default_str();
        cmd.add_option("--columns", o.columns, "images a row of the picture")
            ->check(range_check(integer_in(1, 1000)))
            ->capture_default_str();
        cmd.add_option("--seed", o.seed, "seed of the draws (the same seed, the same images)")
            ->check(range_check(seed_range()))
            ->capture_default_str();
        cmd.add_option("--out", o.out, "the picture to write (PNG), atomically")->required();
        cmd.add_option("--tensors", o.tensors, "also write the images [N,C,H,W] and labels as safetensors");
      },
      run_sample);
}

}  // namespace lethe::cli
