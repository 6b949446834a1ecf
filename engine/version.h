#pragma once
// The lethe version this library was built as (CMake's project version), for result files.
namespace lethe {
const char* version();
}
