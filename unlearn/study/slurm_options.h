#pragma once
// The options of `lethe run --slurm` (slurm.h), each declared once: the keys of a study's [slurm]
// table and the flags of `lethe run` are these names.
#include <cstdint>
#include <string>

#include "nn/option_table.h"

namespace lethe::study {

struct SlurmOptions {
  std::string partition, account, time;  // sbatch --partition, --account, --time; empty: Slurm's default
  int64_t cpus_per_task = 0;             // 0: the study's threads
  int64_t gpus = -1;                     // --gres=gpu:N; -1: 1 with device = "cuda", else none
  std::string sbatch_args;               // more sbatch options, separated by spaces
  int64_t poll = 5;                      // seconds between looks at the queue while waiting
};
const nn::OptionTable<SlurmOptions>& slurm_options();

}  // namespace lethe::study
