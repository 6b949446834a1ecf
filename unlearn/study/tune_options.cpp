#include "unlearn/study/tune_options.h"

namespace lethe::study {

const nn::OptionTable<TuneOptions>& tune_options() {
  using T = TuneOptions;
  static const nn::OptionTable<T> table = {
      {"trials", &T::trials, "trials per method (the same for every method; trial 0 is its untuned setting)",
       nn::integer_in(1, 100000)},
      {"validation", &T::validation,
       "fraction of the training pool held out as the validation split the trials are measured on (never the test "
       "set; never trained on)",
       nn::positive_up_to(0.5)},
      {"search-seed", &T::search_seed, "seed of the trials' draws from the search spaces", nn::seed_range()},
      {"rcd-weight", &T::rcd_weight,
       "add this × the relearning shortfall max(0, 1 − RCD/RCD_retrained) to the criterion (0: the validation gap "
       "alone); each trial then relearns its model",
       nn::real_in(0, 1e6)},
      {"jobs", &T::jobs, "trials run at once, each in its own process with --threads threads", nn::integer_in(1, 256)},
  };
  return table;
}

}  // namespace lethe::study
