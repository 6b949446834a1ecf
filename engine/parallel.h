#pragma once
// The CPU thread count used by lethe's loops and by OpenBLAS. Results are bitwise reproducible
// for a fixed thread count (and reductions do not depend on it at all).
namespace lethe {

void set_num_threads(int threads);
int num_threads();

}  // namespace lethe
