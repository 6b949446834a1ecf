// The normalisation and regularisation ops' cases (tests/op_registry.h): batch_norm in training
// and eval, with and without affine, on [N,C] and [N,C,H,W], its running statistics compared
// across devices; group_norm; dropout. Their forward checks (running statistics written in place, the Philox
// mask bit for bit) are in tests/test_norm.cpp.
#include <cmath>
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

  // group_norm: statistics per (sample, group) over the group's channels and positions; inputs x,
  // and weight and bias when `affine`.
  const auto group_norm_reference = [](int64_t groups, bool affine) -> Reference {
    return [groups, affine](const V& t) {
      const std::vector<double> x = t[0].to_vector<double>();
      const std::vector<double> w = affine ? t[1].to_vector<double>() : std::vector<double>();
      const std::vector<double> b = affine ? t[2].to_vector<double>() : std::vector<double>();
      const int64_t n = t[0].size(0), channels = t[0].size(1);
      const int64_t per_channel = t[0].numel() / (n * channels), per_group = per_channel * channels / groups;
      std::vector<double> y(x.size());
      for (int64_t g = 0; g < n * groups; ++g) {
        double m = 0, v = 0;
        for (int64_t i = 0; i < per_group; ++i) m += x[g * per_group + i] / per_group;
        for (int64_t i = 0; i < per_group; ++i) v += (x[g * per_group + i] - m) * (x[g * per_group + i] - m) / per_group;
        for (int64_t i = 0; i < per_group; ++i) {
          const int64_t at = g * per_group + i, c = (at / per_channel) % channels;
          y[at] = (x[at] - m) / std::sqrt(v + 1e-5);
          if (affine) y[at] = y[at] * w[c] + b[c];
        }
      }
      return expected(y, t[0].shape());
    };
  };
  // Rows of 12, 1 and 50 elements, planes of 6, 1 and 25: the CPU sums rows and planes in eight
  // partial sums, so these cover whole blocks of eight and the elements after them.
  for (const Shape& shape : {Shape{3, 4, 2, 3}, Shape{2, 6}, Shape{2, 6, 5, 5}}) {
    const int64_t C = shape[1], groups = shape.size() == 4 && shape[2] == 5 ? 3 : 2;
    const std::string name = "group_norm/" + std::to_string(groups) + "-groups-" +
                             (shape.size() == 4 ? std::to_string(shape[2]) + "x" + std::to_string(shape[3]) : "2d");
    cases.push_back({.name = name,
                     .fn = [groups](const V& t) { return group_norm(t[0], groups, t[1], t[2]); },
                     .forward = ForwardCheck{{uniform(shape, 50, -2, 2).grad(), uniform({C}, 51, 0.5, 1.5).grad(),
                                              uniform({C}, 52).grad()},
                                             group_norm_reference(groups, true), {{DType::f64, 1e-12, 1e-13}, {DType::f32, 1e-5, 1e-5}}},
                     .gradcheck = GradCheck{{uniform(shape, 53, -2, 2).grad(), uniform({C}, 54, 0.5, 1.5).grad(),
                                             uniform({C}, 55).grad()}},
                     .parity = ParityCheck{{uniform({5, C, 7}, 56, -2, 2).grad(), uniform({C}, 57, 0.5, 1.5).grad(),
                                            uniform({C}, 58).grad()}}});
  }
  cases.push_back({.name = "group_norm/no-affine",
                   .fn = [](const V& t) { return group_norm(t[0], 3, Tensor(), Tensor()); },
                   .forward = ForwardCheck{{uniform({2, 6, 3, 3}, 60, -2, 2).grad()}, group_norm_reference(3, false),
                                           {{DType::f64, 1e-12, 1e-13}, {DType::f32, 1e-5, 1e-5}}},
                   .gradcheck = GradCheck{{uniform({2, 6, 2, 2}, 59, -2, 2).grad()}},
                   .parity = ParityCheck{{uniform({4, 6, 9}, 61, -2, 2).grad()}}});

  // Philox masks: the same on every device, so parity is exact.
  cases.push_back({.name = "dropout/p0.3",
                   .fn = [](const V& t) { return dropout(t[0], 0.3, true, 99, 3); },
                   .gradcheck = GradCheck{{uniform({3, 5}, 62).grad()}},
                   .parity = ParityCheck{{uniform({9, 37}, 63).grad()}, 0, 0}});
  return cases;
}
