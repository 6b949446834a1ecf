#pragma once
// The page of a convex study (`lethe dynamics`, unlearn/dynamics.h): the constants, measured
// against predicted, and three plots — log-distance to the fixed point per step with the
// contraction factor's slope, the noise spread against its prediction, and the relearning steps
// against the distance to the retrained optimum.
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace lethe::study {

std::string render_dynamics_report(const nlohmann::json& record);

}  // namespace lethe::study
