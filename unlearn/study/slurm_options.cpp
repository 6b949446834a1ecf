#include "unlearn/study/slurm_options.h"

namespace lethe::study {

const nn::OptionTable<SlurmOptions>& slurm_options() {
  using S = SlurmOptions;
  static const nn::OptionTable<S> table = {
      {"partition", &S::partition, "--slurm: the partition every job goes to (default: the cluster's)"},
      {"account", &S::account, "--slurm: the account the jobs are charged to"},
      {"time", &S::time, "--slurm: each job's time limit, as sbatch --time takes it (e.g. 2:00:00)"},
      {"cpus-per-task", &S::cpus_per_task, "--slurm: CPUs per job (0: the study's threads)",
       nn::integer_in(0, 4096)},
      {"gpus", &S::gpus, "--slurm: GPUs per job, as --gres=gpu:N (-1: 1 when the study's device is cuda, else 0)",
       nn::integer_in(-1, 64)},
      {"sbatch-args", &S::sbatch_args, "--slurm: more sbatch options for every job, separated by spaces"},
      {"poll", &S::poll, "--slurm: seconds between looks at the queue while waiting", nn::integer_in(1, 3600)},
  };
  return table;
}

}  // namespace lethe::study
