#pragma once
// CLI11's classes, declared for the headers that only name them: Debian's CLI11 (2.1) is
// header-only and costs about 6 s of compiling in each file that includes <CLI/CLI.hpp>, so only
// the files that build or parse command lines include it.
namespace CLI {
class App;
class Option;
class Validator;
}  // namespace CLI
