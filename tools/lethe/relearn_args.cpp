#include "relearn_args.h"

#include "option_range.h"

namespace lethe::cli {

void add_relearn_options(CLI::App& cmd, unlearn::RelearnOptions& o) {
  cmd.add_option("--preset", o.preset, "a literature protocol: golatkar (fine-tune time: the whole training set in "
                 "chunks of 500, until the forget loss <= the original's) or ain (Adam at 1e-3 in batches of 256 until "
                 "95% of the original's accuracy, class-wise on the forgotten classes' test images); flags given "
                 "explicitly win")
      ->check(CLI::IsMember({"golatkar", "ain"}));
  cmd.add_option("--optimizer", o.optimizer, "sgd (default) or adam")->check(CLI::IsMember({"sgd", "adam"}));
  cmd.add_option("--lr", o.lr, "learning rate (default: sgd 0.05 for random forgetting, 0.01 otherwise; adam 1e-3)")
      ->check(positive_up_to(100));
  cmd.add_option("--momentum", o.momentum, "SGD momentum")->check(unit_open())->capture_default_str();
  cmd.add_option("--weight-decay", o.weight_decay, "weight decay (SGD coupled, Adam decoupled)")
      ->check(real_in(0, 100))->capture_default_str();
  cmd.add_option("--batch", o.batch, "batch size (default 128; golatkar 500)")->check(integer_in(1, 1 << 20));
  cmd.add_option("--steps", o.steps, "step cap: a target not met by then is reported as the cap, censored")
      ->check(integer_in(1, kMaxCount))
      ->capture_default_str();
  cmd.add_option("--cap-limit", o.cap_limit, "the retrained model's cap: it relearns past --steps until it meets "
                 "both targets or reaches this, so the ratios' denominator is measured (default 8 x --steps; >= --steps)")
      ->check(integer_in(1, kMaxCount));
  cmd.add_option("--eval-every", o.eval_every, "evaluate the forget set every K steps; a crossing is replayed step "
                 "by step (default: 5 for random forgetting, 1 otherwise)")->check(integer_in(1, kMaxCount));
  cmd.add_option("--eval-batch", o.eval_batch, "batch size of the forward-only evaluations")
      ->check(integer_in(1, 1 << 20))->capture_default_str();
  cmd.add_option("--seed", o.seed, "seed of the batch order and of sampled subsets")
      ->check(seed_range())->capture_default_str();
  cmd.add_option("--bn", o.bn, "batch norm during the steps: train (batch statistics) or frozen (running ones)")
      ->capture_default_str()->check(CLI::IsMember({"train", "frozen"}));
  cmd.add_option("--cuda-graph", o.cuda_graph, "on CUDA, capture the step once as a CUDA graph and replay it "
                 "(the same results; false: launch its kernels one by one)")->capture_default_str();
  cmd.add_option("--forget-samples", o.forget_samples, "relearn on part of the forget set: a fraction < 1 or a "
                 "count, seeded (0: all of it); always measured on all of it")
      ->check(real_in(0, kMaxCount))->capture_default_str();
  cmd.add_option("--retain-samples", o.retain_samples, "add retain samples: a fraction <= 1 or a count > 1, seeded "
                 "(default 0; golatkar 1, the whole training set)")->check(real_in(0, kMaxCount));
  cmd.add_option("--retain-mix", o.retain_mix, "the share of retain samples in the relearning data, in [0, 1]: "
                 "F forget samples get round(F m / (1 - m)) seeded retain samples (1: retain samples only, F of them); "
                 "default 0.5 for class-wise and backdoor scenarios, 0 otherwise or with --retain-samples")
      ->check(fraction());
  cmd.add_option("--target-set", o.target_set, "what the targets and RCD are measured on: forget (the forget set, "
                 "default) or class-test (the test images of the forgotten classes; class-wise only; ain's default there)")
      ->check(CLI::IsMember({"forget", "class-test"}));
  cmd.add_option("--calibration-samples", o.calibration_samples, "the calibration-matched RCD: the first N test images "
                 "(class-wise: of the remaining classes) are a held-out set on which each model's temperature is fitted "
                 "at every evaluation; its forget loss at that temperature must fall to the original's (0: off)")
      ->check(integer_in(0, kMaxCount))
      ->capture_default_str();
  cmd.add_option("--accuracy-drop", o.accuracy_drop, "accuracy target = the original's forget accuracy minus this")
      ->check(fraction())
      ->capture_default_str();
  cmd.add_option("--accuracy-ratio", o.accuracy_ratio, "accuracy target = this times the original's (ain: 0.95)")
      ->check(fraction());
  cmd.add_option("--accuracy-target", o.accuracy_target, "an explicit forget-accuracy target (fraction)")
      ->check(fraction());
  cmd.add_option("--loss-target", o.loss_target, "an explicit forget-loss target (nats; default: the original's)")
      ->check(positive_up_to(1e6));
  cmd.add_option("--stop", o.stop, "stop a model when: all (both targets met, default), loss, accuracy, or none "
                 "(run to the cap; ain: accuracy)")->check(CLI::IsMember({"all", "loss", "accuracy", "none"}));
  cmd.add_option("--headline", o.headline, "the RCD summaries lead with: loss (default) or accuracy (ain)")
      ->check(CLI::IsMember({"loss", "accuracy"}));
}

}  // namespace lethe::cli
