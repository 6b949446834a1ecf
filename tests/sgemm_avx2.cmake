# Included by ctest (tests/CMakeLists.txt): the environment of the [lethe AVX2 kernel] entries,
# float32 GEMMs on lethe's AVX2 + FMA kernel whatever this CPU's best is.
set_tests_properties(${LETHE_SGEMM_AVX2_TESTS} PROPERTIES ENVIRONMENT "LETHE_SGEMM=avx2")
