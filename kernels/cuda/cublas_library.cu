// cuBLAS, loaded with dlopen on first use instead of linked. Linked, libcublasLt's load-time
// constructors run in every process before main: about 0.35 s and 210 MB of resident memory for
// each `lethe` command and each test process, on a GPU or not (bench/RESULTS.md, "Every process
// started 0.35 s late"). cuDNN 9's front library loads its engines on demand itself and costs
// nothing at load, so it stays linked.
#include <dlfcn.h>

#include <mutex>
#include <string>

#include "kernels/cuda/common.cuh"
#include "kernels/loaded_library.h"

#ifndef LETHE_CUDA_LIBRARY_DIR
#error "LETHE_CUDA_LIBRARY_DIR (the CUDA toolkit's library folder) must be defined by the build"
#endif

// The name a cublas_v2.h entry point has in the library (cublasCreate is cublasCreate_v2).
#define LETHE_SYMBOL_NAME_(name) #name
#define LETHE_SYMBOL_NAME(name) LETHE_SYMBOL_NAME_(name)

namespace lethe::cuda {

namespace {

const std::string kSoname = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);

// The library's soname first (LD_LIBRARY_PATH, the executable's run path, the loader's cache),
// then the folder of the toolkit lethe was built with.
void* open_cublas(std::string& tried) {
  for (const std::string& path : {kSoname, std::string(LETHE_CUDA_LIBRARY_DIR) + "/" + kSoname}) {
    if (void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) return handle;
    const char* why = dlerror();
    tried += "\n  " + path + ": " + (why != nullptr ? why : "unknown error");
  }
  return nullptr;
}

}  // namespace

// Loaded once, by whichever thread gets here first. A failed load throws and leaves the flag
// unset, so the next call tries (and reports) again.
const Cublas& cublas_library() {
  static Cublas lib;
  static std::once_flag once;
  std::call_once(once, [] {
    std::string tried;
    void* handle = open_cublas(tried);
    if (handle == nullptr) LETHE_FAIL("cublas", "cannot load ", kSoname, "; tried:", tried);
    const auto resolve = [&](const char* name, auto& fn) { resolve_symbol("cublas", handle, kSoname.c_str(), name, fn); };
    Cublas l;
    resolve(LETHE_SYMBOL_NAME(cublasCreate), l.create);
    resolve(LETHE_SYMBOL_NAME(cublasSetStream), l.set_stream);
    resolve(LETHE_SYMBOL_NAME(cublasSetMathMode), l.set_math_mode);
    resolve(LETHE_SYMBOL_NAME(cublasSetWorkspace), l.set_workspace);
    resolve(LETHE_SYMBOL_NAME(cublasSgemmStridedBatched), l.sgemm_strided_batched);
    resolve(LETHE_SYMBOL_NAME(cublasDgemmStridedBatched), l.dgemm_strided_batched);
    resolve(LETHE_SYMBOL_NAME(cublasGetStatusName), l.status_name);
    resolve(LETHE_SYMBOL_NAME(cublasGetStatusString), l.status_string);
    lib = l;
  });
  return lib;
}

}  // namespace lethe::cuda
