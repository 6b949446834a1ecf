#include "kernels/cpu/normal_blocks.h"

#include <algorithm>
#include <iterator>

#include "engine/error.h"
#include "kernels/common/philox.h"
#include "kernels/cpu/cpu_features.h"

namespace lethe::cpu {

namespace {

struct PathFacts {
  NormalPath path;
  const char* name;
  bool present;
};
const PathFacts& facts(NormalPath path) {
  static const PathFacts table[] = {
      {NormalPath::avx512, "avx512", has_avx512f()},
      {NormalPath::avx2, "avx2", has_avx2_fma()},
      {NormalPath::scalar, "scalar", true}};
  return *std::find_if(std::begin(table), std::end(table), [&](const PathFacts& f) { return f.path == path; });
}

void fill(NormalPath path, uint64_t seed, uint64_t stream, uint64_t first_block, int64_t blocks, float* out) {
  int64_t k = 0;
  if (path == NormalPath::avx512) k = detail::normal_blocks_avx512(seed, stream, first_block, blocks, out);
  else if (path == NormalPath::avx2) k = detail::normal_blocks_avx2(seed, stream, first_block, blocks, out);
  for (; k < blocks; ++k) philox::normal4(seed, stream, first_block + static_cast<uint64_t>(k), out + 4 * k);
}

}  // namespace

const char* normal_path_name(NormalPath path) { return facts(path).name; }
bool cpu_has(NormalPath path) { return facts(path).present; }

NormalPath normal_path() {
  static const NormalPath best = *std::find_if(std::begin(kNormalPaths), std::end(kNormalPaths),
                                               [](NormalPath p) { return cpu_has(p); });  // scalar at worst
  return best;
}

void normal_blocks(uint64_t seed, uint64_t stream, uint64_t first_block, int64_t blocks, float* out) {
  fill(normal_path(), seed, stream, first_block, blocks, out);
}

void normal_blocks(NormalPath path, uint64_t seed, uint64_t stream, uint64_t first_block, int64_t blocks,
                   float* out) {
  LETHE_CHECK(cpu_has(path), "normal_blocks", "the ", normal_path_name(path), " path needs CPU features this CPU lacks");
  fill(path, seed, stream, first_block, blocks, out);
}

}  // namespace lethe::cpu
