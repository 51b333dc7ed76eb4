// The fuzzing build switch. Configured with -DRAVLT_FUZZ=ON (clang,
// libFuzzer; see tests/fuzz/), the build defines RAVLT_FUZZING and skips the
// integrity checks that would stop almost every mutated input before the
// parsers behind them: zip entry CRCs, PNG chunk CRCs, zlib checksums and
// the packed-weight file's checksum.
// (The .rvlt checksum needs no switch: the loader's fuzzer opens files with
// verify_checksum off.) Never defined in a normal build.
#pragma once

namespace ravlt {

#ifdef RAVLT_FUZZING
inline constexpr bool kFuzzingBuild = true;
#else
inline constexpr bool kFuzzingBuild = false;
#endif

}  // namespace ravlt
