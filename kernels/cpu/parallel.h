#pragma once
// The CPU backend's threads: how many lethe's loops and OpenBLAS use, and parallel_for, OpenMP with
// static partitioning, so each thread always gets the same range for the same thread count and
// results are reproducible run to run (reductions do not depend on the count at all); the grain of
// a loop, and blocks of items stepped together.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

namespace lethe {

void set_num_threads(int threads);  // lethe's loops and OpenBLAS
int num_threads();

}  // namespace lethe

namespace lethe::cpu {

// Below this many elements of simple work a loop runs on one thread (threads cost ~µs to wake).
inline constexpr int64_t kGrain = 32768;

// The grain of a loop whose items are `work` elements each: enough items to make kGrain elements.
inline int64_t grain_for(int64_t work) { return std::max<int64_t>(1, kGrain / std::max<int64_t>(1, work)); }

// f(n) with n a compile-time constant when it is Full, a block's usual size, so that loops over it
// unroll; a plain int64_t otherwise (the last, partial block).
template <int64_t Full, class F>
void with_block_size(int64_t n, F&& f) {
  if (n == Full) f(std::integral_constant<int64_t, Full>{});
  else f(n);
}

template <class F>
void parallel_for(int64_t n, int64_t grain, F&& body) {
  if (n <= 0) return;
  const int max_threads = omp_get_max_threads();
  if (n <= grain || max_threads == 1 || omp_in_parallel()) {
    body(int64_t{0}, n);
    return;
  }
  const int threads = static_cast<int>(std::min<int64_t>(max_threads, (n + grain - 1) / grain));
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t chunk = (n + nt - 1) / nt;
    const int64_t begin = std::min(n, t * chunk), end = std::min(n, begin + chunk);
    if (begin < end) body(begin, end);
  }
}

}  // namespace lethe::cpu
