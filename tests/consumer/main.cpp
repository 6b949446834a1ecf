#include <cstdio>

#include "engine/ops.h"

int main() {
  const lethe::Tensor x = lethe::Tensor::arange(1, 5);  // 1 2 3 4
  const double total = lethe::sum(lethe::mul(x, x)).item();
  std::printf("sum of squares: %g\n", total);
  return total == 30 ? 0 : 1;
}
