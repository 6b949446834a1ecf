# Included by ctest (tests/CMakeLists.txt): the environment of the [OpenBLAS, Haswell kernels]
# entries. Two variables, which doctest_discover_tests's PROPERTIES cannot pass (it splits a value
# at ';'): float32 GEMMs on OpenBLAS (LETHE_SGEMM), with OpenBLAS's Haswell kernels, the AVX2 + FMA
# set it picks on Intel CPUs without AVX-512, whatever this CPU is (OPENBLAS_CORETYPE).
set_tests_properties(${LETHE_OPENBLAS_HASWELL_TESTS} PROPERTIES
  ENVIRONMENT "LETHE_SGEMM=openblas;OPENBLAS_CORETYPE=Haswell")
