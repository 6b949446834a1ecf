#pragma once
// Reducers shared by the CPU and CUDA reductions. A reduction over K elements is cut into fixed
// chunks of kReduceChunk elements; each chunk is reduced in order, then the chunk partials are
// combined in order. The chunking never depends on the thread count or the GPU, so results
// are bitwise reproducible, and sums accumulate in float64.
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "kernels/common/hd.h"

namespace lethe {

inline constexpr int64_t kReduceChunk = 16384;

enum class ReduceOp { sum, max, min };

namespace red {

template <class T>
LETHE_HD bool is_nan(T x) { return x != x; }
template <class T>
LETHE_HD T lowest() {
  if constexpr (std::is_floating_point_v<T>) return -static_cast<T>(INFINITY);
  else return std::numeric_limits<T>::lowest();
}
template <class T>
LETHE_HD T highest() {
  if constexpr (std::is_floating_point_v<T>) return static_cast<T>(INFINITY);
  else return std::numeric_limits<T>::max();
}

template <class T>
struct Sum {
  using acc_t = double;
  LETHE_HD static acc_t init() { return 0; }
  LETHE_HD static acc_t step(acc_t a, T x, int64_t) { return a + static_cast<double>(x); }
  LETHE_HD static acc_t combine(acc_t a, acc_t b) { return a + b; }
  LETHE_HD static T value(acc_t a) { return static_cast<T>(a); }
};

// Max/min propagate NaN, as PyTorch does.
template <class T>
struct Max {
  using acc_t = T;
  LETHE_HD static acc_t init() { return lowest<T>(); }
  LETHE_HD static acc_t step(acc_t a, T x, int64_t) { return (x > a || is_nan(x)) && !is_nan(a) ? x : a; }
  LETHE_HD static acc_t combine(acc_t a, acc_t b) { return step(a, b, 0); }
  LETHE_HD static T value(acc_t a) { return a; }
};
template <class T>
struct Min {
  using acc_t = T;
  LETHE_HD static acc_t init() { return highest<T>(); }
  LETHE_HD static acc_t step(acc_t a, T x, int64_t) { return (x < a || is_nan(x)) && !is_nan(a) ? x : a; }
  LETHE_HD static acc_t combine(acc_t a, acc_t b) { return step(a, b, 0); }
  LETHE_HD static T value(acc_t a) { return a; }
};

// Value and index of the first maximum (NaN counts as the maximum).
template <class T>
struct ArgMaxAcc {
  T v;
  int64_t i;
};
template <class T>
struct ArgMax {
  using acc_t = ArgMaxAcc<T>;
  LETHE_HD static acc_t init() { return {lowest<T>(), -1}; }
  LETHE_HD static acc_t combine(acc_t a, acc_t b) {
    if (b.i < 0) return a;
    if (a.i < 0) return b;
    if (is_nan(a.v)) return (is_nan(b.v) && b.i < a.i) ? b : a;
    if (is_nan(b.v) || b.v > a.v || (b.v == a.v && b.i < a.i)) return b;
    return a;
  }
  LETHE_HD static acc_t step(acc_t a, T x, int64_t i) { return combine(a, acc_t{x, i}); }
  LETHE_HD static int64_t value(acc_t a) { return a.i < 0 ? 0 : a.i; }
};

}  // namespace red

#define LETHE_REDUCE_OPS(X) X(sum, Sum) X(max, Max) X(min, Min)

}  // namespace lethe
