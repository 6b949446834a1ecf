// lethe split: draws a forgetting scenario's split and writes it, so training (for the poisoning
// scenarios), every unlearning method, the metrics and relearning all see the same samples.
#include <fmt/core.h>

#include "commands.h"
#include "unlearn/study/common.h"
#include "unlearn/study/scenario_args.h"
#include "subcommand.h"

namespace lethe::cli {

namespace {

struct SplitOptions {
  RunOptions run;
  ScenarioArgs scenario;
  std::string out;
};

void run_split(const SplitOptions& o) {
  const CommandRun command("split", o.run);
  const DataSource source = load_data(o.run, true, false);  // a split is of the training set alone
  const unlearn::Split split = resolve_split(o.scenario, source);
  check_outputs("split", {{"--out", o.out}}, {{"--split", o.scenario.split}});
  unlearn::save_split(o.out, split);
  nlohmann::json result = command.result();
  result.update({{"scenario", split.scenario.str()},
                 {"seed", split.seed},
                 {"train_size", split.train_size},
                 {"pool", split.pool.str()},
                 {"forget", split.forget.size()},
                 {"retain", split.retain.size()},
                 {"validation", split.validation.size()},
                 {"digest", split.digest()},
                 {"split", o.out}});
  const std::string of =
      split.pool.trivial()
          ? fmt::format("{} training samples", split.train_size)
          : fmt::format("the {} training samples of the pool {} ({} validation samples held out)",
                        split.forget.size() + split.retain.size(), split.pool.str(), split.validation.size());
  command.print(result, fmt::format("{} (seed {}): forget {} of {}, retain {}\nsplit {} written to {}\n",
                                    split.scenario.str(), split.seed, split.forget.size(), of, split.retain.size(),
                                    split.digest(), o.out));
}

}  // namespace

void add_split_command(CLI::App& app) {
  add_data_command<SplitOptions>(
      app, "split", "draw a forgetting scenario's forget/retain split and write it",
      [](CLI::App& cmd, SplitOptions& o) {
        add_scenario_options(cmd, o.scenario);
        cmd.add_option("--out", o.out, "split file to write (JSON)")->required();
      },
      run_split);
}

}  // namespace lethe::cli
