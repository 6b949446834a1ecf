#include "engine/version.h"

namespace lethe {
const char* version() { return LETHE_VERSION; }
}  // namespace lethe
