#include "kernels/cpu/parallel.h"

#include <omp.h>

#include "kernels/cpu/blas.h"
#include "engine/error.h"

namespace lethe {

void set_num_threads(int threads) {
  LETHE_CHECK(threads >= 1, "set_num_threads", "needs at least 1 thread, got ", threads);
  omp_set_num_threads(threads);
  blas::set_threads(threads);
}

int num_threads() { return omp_get_max_threads(); }

}  // namespace lethe
