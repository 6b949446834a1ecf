#pragma once
// Learning-rate schedules, evaluated per optimizer step on the host (the optimizer's set_lr then
// writes the value to the device): an optional linear warm-up from 0, then constant, step decay or
// cosine decay. lr_at is a pure function of the step index, so a resumed run gets the same rates.
#include <cstdint>
#include <string>

namespace lethe::nn {

enum class ScheduleKind { constant, step, cosine };

struct Schedule {
  ScheduleKind kind = ScheduleKind::constant;
  double base_lr = 0.01;
  int64_t total_steps = 0;   // cosine: the decay ends (at final_lr) at this step
  int64_t warmup_steps = 0;  // lr = base_lr · step / warmup_steps for step < warmup_steps
  int64_t step_size = 0;     // step: steps between decays by gamma
  double gamma = 0.1;
  double final_lr = 0;       // cosine

  // The rate of step `step` (0-based). With t = step − warmup_steps and T = total_steps −
  // warmup_steps: constant base_lr; step base_lr·gamma^⌊t/step_size⌋; cosine final_lr +
  // (base_lr − final_lr)·½(1 + cos(π·t/T)), held at final_lr for t > T — with final_lr 0 exactly
  // PyTorch's LambdaLR(0.5·(1 + cos(π·s/T))) of the WORKLOADS recipe. Throws on an invalid schedule.
  double lr_at(int64_t step) const;
  void validate() const;  // throws lethe::Error naming the bad field
};

ScheduleKind parse_schedule(const std::string& name);  // "constant", "step" or "cosine"
std::string schedule_name(ScheduleKind kind);

}  // namespace lethe::nn
