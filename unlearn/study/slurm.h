#pragma once
// `lethe run CONFIG --slurm`: every phase of a study (study_plan.h) as a Slurm job running
// `lethe run CONFIG --phase ID`, with afterok dependencies along the plan's edges, on a file
// system the nodes share (README, "On a Slurm cluster").
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "unlearn/study/slurm_options.h"
#include "unlearn/study/study_plan.h"

namespace lethe::study {

struct SlurmRun {
  std::string study, config, out;  // config and out as given: the phases' records hold out's paths
  bool quick = false;
  std::string device;
  int64_t threads = 1;
  std::string plan_digest;  // plan_digest(): a job refuses to run a phase of another plan
  SlurmOptions options;
  bool wait = true, dry_run = false;
};

// The digest of a plan, which `--phase ID --plan-digest D` checks: a config changed after the
// submission changes it.
std::string plan_digest(const nlohmann::json& plan);

// Submits every phase of `plan` for which `done` is false (report: whenever anything else is
// submitted or results.json is missing), each with afterok on the submitted phases it needs; with
// `wait`, follows the jobs until they leave the queue and throws naming every phase whose job
// ended without the phase done, with its log. `dry_run` prints the scripts and submits nothing.
void run_on_slurm(const SlurmRun& run, const std::vector<PlannedPhase>& plan,
                  const std::function<bool(const PlannedPhase&)>& done);

}  // namespace lethe::study
