// The summary of a replicated study on hand-made "models" arrays: means and t-intervals of the
// metrics, censored RCD medians with their bounds, ratios to the retrained model, paired differences.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/error.h"
#include "unlearn/study_summary.h"

using lethe::unlearn::summarize_replicates;
using nlohmann::json;

namespace {

json model(const std::string& name, const std::string& role, double fa, int64_t loss_steps, bool loss_censored,
           bool diverged = false) {
  return {{"name", name},
          {"method", name == "original" || name == "retrained" ? name : name},
          {"role", role},
          {"metrics", {{"fa", fa}, {"ra", 0.9}, {"ta", 0.8}}},
          {"gap", nullptr},
          {"damaged", false},
          {"rcd",
           {{"loss_steps", diverged ? json() : json(loss_steps)},
            {"loss_censored", loss_censored},
            {"accuracy_steps", 10},
            {"accuracy_censored", false},
            {"loss_auc", 1.0},
            {"diverged", diverged}}}};
}

}  // namespace

TEST_CASE("study summary: t-intervals of the metrics, censored RCD medians and paired differences") {
  // Three replicates. FA of "ieu": 0.1, 0.2, 0.3 → mean 0.2, sd 0.1, CI 0.2 ± 4.302653·0.1/√3.
  // FA of "retrained": 0.5 each → paired ieu − retrained: −0.4, −0.3, −0.2 → mean −0.3, sd 0.1.
  // RCD loss of "retrained": 100, 200, ≥300 (censored) → median 200, exact (the censored value
  // ranks last); of "ieu": 50, 60, 70 → median 60; median ratio 60/200 = 0.3, exact.
  const std::vector<json> reps = {
      json::array({model("retrained", "retrained", 0.5, 100, false), model("ieu", "unlearned", 0.1, 50, false)}),
      json::array({model("retrained", "retrained", 0.5, 200, false), model("ieu", "unlearned", 0.2, 60, false)}),
      json::array({model("retrained", "retrained", 0.5, 300, true), model("ieu", "unlearned", 0.3, 70, false)})};
  const json s = summarize_replicates(reps);
  REQUIRE(s.at("models").size() == 2);
  const json& retrained = s.at("models")[0];
  const json& ieu = s.at("models")[1];
  CHECK(ieu.at("name") == "ieu");
  CHECK(ieu.at("replicates") == 3);
  const json& fa = ieu.at("figures").at("metrics.fa");
  CHECK(fa.at("mean").get<double>() == doctest::Approx(0.2));
  CHECK(fa.at("sd").get<double>() == doctest::Approx(0.1));
  const double half = 4.302652729749464 * 0.1 / std::sqrt(3.0);
  CHECK(fa.at("ci_low").get<double>() == doctest::Approx(0.2 - half));
  CHECK(fa.at("ci_high").get<double>() == doctest::Approx(0.2 + half));

  const json& r_loss = retrained.at("rcd").at("loss");
  CHECK(r_loss.at("n") == 3);
  CHECK(r_loss.at("censored") == 1);
  CHECK(r_loss.at("median").at("value").get<double>() == 200);
  CHECK(r_loss.at("median").at("bound") == "exact");
  const json& i_loss = ieu.at("rcd").at("loss");
  CHECK(i_loss.at("median").at("value").get<double>() == 60);
  CHECK(i_loss.at("median_ratio").at("value").get<double>() == doctest::Approx(0.3));
  CHECK(i_loss.at("median_ratio").at("bound") == "exact");
  // Per replicate: 50/100 and 60/200 exact; 70 over a censored 300 is at most 70/300.
  REQUIRE(i_loss.at("ratios").size() == 3);
  CHECK(i_loss.at("ratios")[0].at("bound") == "exact");
  CHECK(i_loss.at("ratios")[2].at("bound") == "at_most");

  const json& d = ieu.at("paired").at("retrained").at("metrics.fa");
  CHECK(d.at("summary").at("mean").get<double>() == doctest::Approx(-0.3));
  CHECK(d.at("summary").at("sd").get<double>() == doctest::Approx(0.1));
  CHECK(d.at("significant") == true);  // −0.3 ± 0.248: excludes 0
  // RCD steps are paired only where both are exact: replicates 0 and 1.
  CHECK(ieu.at("paired").at("retrained").at("rcd.loss_steps").at("summary").at("n") == 2);
  CHECK_FALSE(retrained.at("paired").contains("retrained"));
}

TEST_CASE("study summary: a diverged run is counted apart, never as a delay, the median of mostly censored runs is a bound") {
  const std::vector<json> reps = {json::array({model("ga", "unlearned", 0.1, 0, false, true)}),
                                  json::array({model("ga", "unlearned", 0.1, 300, true)}),
                                  json::array({model("ga", "unlearned", 0.1, 300, true)})};
  const json s = summarize_replicates(reps);
  const json& ga = s.at("models")[0];
  CHECK(ga.at("diverged") == 1);
  const json& loss = ga.at("rcd").at("loss");
  CHECK(loss.at("n") == 2);
  CHECK(loss.at("diverged") == 1);
  CHECK(loss.at("median").at("bound") == "at_least");
  CHECK_FALSE(loss.contains("median_ratio"));  // no retrained model to divide by
}

TEST_CASE("study summary: bad input") {
  CHECK_THROWS_AS(summarize_replicates({}), lethe::Error);
  CHECK_THROWS_AS(summarize_replicates({json::object()}), lethe::Error);
  CHECK_THROWS_AS(summarize_replicates({json::array({json{{"name", "x"}}})}), lethe::Error);
}
