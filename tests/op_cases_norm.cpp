// The normalisation and regularisation ops' cases (tests/op_registry.h): batch_norm in training
// and eval, with and without affine, on [N,C] and [N,C,H,W], its running statistics compared
// across devices; dropout. Their forward checks (running statistics written in place, the Philox
// mask bit for bit) are in tests/test_norm.cpp.
#include <string>

#include "op_registry.h"

using namespace lethe;
using namespace lethe::test;

namespace {

using V = std::vector<Tensor>;

// batch_norm's gradient cases: weight, bias and the running statistics in inputs 1 to 4. In
// training the running statistics are left out: they would change on every call (they do not
// affect y).
OpCase batch_norm_case(bool training, bool affine, const Shape& shape) {
  const int64_t C = shape[1];
  return {.name = std::string("batch_norm/") + (training ? "train" : "eval") + (affine ? "-affine" : "") +
                  (shape.size() == 4 ? "-4d" : "-2d"),
          .fn = [training](const V& t) {
            return training ? batch_norm(t[0], t[1], t[2], Tensor(), Tensor(), true)
                            : batch_norm(t[0], t[1], t[2], t[3], t[4], false);
          },
          .gradcheck = GradCheck{{uniform(shape, 20, -2, 2).grad(),
                                  affine ? uniform({C}, 21, 0.5, 1.5).grad() : absent("no weight"),
                                  affine ? uniform({C}, 22).grad() : absent("no bias"), uniform({C}, 23),
                                  uniform({C}, 24, 0.5, 2)}}};
}

}  // namespace

LETHE_OP_CASES(norm) {
  std::vector<OpCase> cases;
  for (bool training : {true, false})
    for (bool affine : {true, false})
      for (const Shape& shape : {Shape{3, 2, 2, 2}, Shape{5, 3}}) {
        OpCase c = batch_norm_case(training, affine, shape);
        if (training && !affine && shape.size() == 2)
          c.parity = ParityCheck{{uniform({16, 5}, 35).grad(), absent("no weight"), absent("no bias")}};
        cases.push_back(c);
      }

  // The output and, after it, the running statistics as the op left them.
  for (bool training : {true, false})
    cases.push_back({.name = std::string("batch_norm/") + (training ? "train" : "eval") + "-affine-4d-running-statistics",
                     .fn = [training](const V& t) {
                       const Tensor y = batch_norm(t[0], t[1], t[2], t[3], t[4], training);
                       return concat({y.flatten(), t[3], t[4]}, 0);
                     },
                     .parity = ParityCheck{{uniform({8, 4, 3, 3}, 30, -2, 2).grad(), uniform({4}, 31, 0.5, 1.5).grad(),
                                            uniform({4}, 32).grad(), uniform({4}, 33), uniform({4}, 34, 0.5, 2)}}});

  // Philox masks: the same on every device, so parity is exact.
  cases.push_back({.name = "dropout/p0.3",
                   .fn = [](const V& t) { return dropout(t[0], 0.3, true, 99, 3); },
                   .gradcheck = GradCheck{{uniform({3, 5}, 62).grad()}},
                   .parity = ParityCheck{{uniform({9, 37}, 63).grad()}, 0, 0}});
  return cases;
}
