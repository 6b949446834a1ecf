#include "nn/schedule.h"

#include <cmath>
#include <numbers>

#include "engine/error.h"

namespace lethe::nn {

ScheduleKind parse_schedule(const std::string& name) {
  if (name == "constant") return ScheduleKind::constant;
  if (name == "step") return ScheduleKind::step;
  if (name == "cosine") return ScheduleKind::cosine;
  LETHE_FAIL("schedule", "unknown schedule '", name, "' (constant, step, cosine)");
}

std::string schedule_name(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::constant: return "constant";
    case ScheduleKind::step: return "step";
    case ScheduleKind::cosine: return "cosine";
  }
  return "?";
}

void Schedule::validate() const {
  const std::string op = "schedule " + schedule_name(kind);
  LETHE_CHECK(std::isfinite(base_lr) && base_lr >= 0, op, "base lr must be finite and non-negative, got ", base_lr);
  LETHE_CHECK(warmup_steps >= 0, op, "warm-up steps must be non-negative, got ", warmup_steps);
  if (kind == ScheduleKind::step) {
    LETHE_CHECK(step_size > 0, op, "step size must be positive, got ", step_size);
    LETHE_CHECK(std::isfinite(gamma) && gamma >= 0, op, "gamma must be finite and non-negative, got ", gamma);
  }
  if (kind == ScheduleKind::cosine) {
    LETHE_CHECK(total_steps > warmup_steps, op, "total steps (", total_steps, ") must exceed the warm-up steps (",
                warmup_steps, ")");
    LETHE_CHECK(std::isfinite(final_lr) && final_lr >= 0, op, "final lr must be finite and non-negative, got ",
                final_lr);
  }
}

double Schedule::lr_at(int64_t step) const {
  validate();
  LETHE_CHECK(step >= 0, "schedule", "negative step ", step);
  if (step < warmup_steps) return base_lr * static_cast<double>(step) / static_cast<double>(warmup_steps);
  const int64_t t = step - warmup_steps;
  switch (kind) {
    case ScheduleKind::constant: return base_lr;
    case ScheduleKind::step: return base_lr * std::pow(gamma, static_cast<double>(t / step_size));
    case ScheduleKind::cosine: {
      const int64_t span = total_steps - warmup_steps;
      if (t >= span) return final_lr;
      // The factor first, as LambdaLR multiplies base_lr by it: bitwise PyTorch's rate when final_lr is 0.
      const double factor = 0.5 * (1 + std::cos(std::numbers::pi * static_cast<double>(t) / static_cast<double>(span)));
      return final_lr + (base_lr - final_lr) * factor;
    }
  }
  return base_lr;
}

}  // namespace lethe::nn
