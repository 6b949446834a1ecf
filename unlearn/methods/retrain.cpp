// retrain: the gold standard. A fresh model from the original's initialisation seed, trained on
// the retain set only with the original's recipe (shared/WORKLOADS.md W1: same recipe, same
// init seed); the method's own step budget does not apply.
#include <nlohmann/json.hpp>

#include "engine/error.h"
#include "nn/train.h"
#include "unlearn/method.h"

namespace lethe::unlearn {

nlohmann::json run_retrain(MethodRun& run) {
  const nn::CheckpointInfo& info = run.original.info;
  LETHE_CHECK(info.recipe.has_value(), "retrain", "the original checkpoint records no training recipe (not written by "
              "`lethe train`), so there is nothing to retrain with: record the recipe it was trained with by "
              "`lethe import --from FILE --model NAME --recipe RECIPE.toml --out FILE` (or its training flags, "
              "`--epochs ... --lr ...`, instead of --recipe)");
  const nn::Recipe& recipe = *info.recipe;
  nn::Model fresh(info.model, info.seed, run.model.device());
  data::LoaderOptions lo;
  lo.batch_size = recipe.batch;
  lo.seed = info.seed;
  lo.normalization = run.normalization;
  lo.augmentation = {recipe.crop_padding, recipe.horizontal_flip};
  lo.device = run.model.device();
  data::DataLoader loader(run.retain(), lo);
  nn::Trainer trainer(fresh, recipe, loader);
  const int64_t total = trainer.total_steps();
  std::vector<double> epoch_losses;
  run.observe_step(0, total, fresh);  // the trajectory starts at the fresh initialisation
  for (int64_t epoch = 0; epoch < recipe.epochs; ++epoch)
    epoch_losses.push_back(trainer.run_epoch(epoch, [&](int64_t i, const Tensor&) {
      const int64_t step = epoch * loader.batches_per_epoch() + i + 1;
      run.observe_step(step, total, fresh);
      run.report(step, total);
    }));
  run.model.net().load_state_dict(fresh.net().state_dict());
  return {{"epochs", recipe.epochs}, {"steps", trainer.step()}, {"init_seed", info.seed},
          {"epoch_train_losses", epoch_losses}};
}

}  // namespace lethe::unlearn
