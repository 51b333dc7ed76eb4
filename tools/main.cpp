// ravlt: convert, inspect, run and benchmark RAVLT models; classify and embed images. Exit status 0
// on success, 1 with a one-line reason on any failure, 2 for bad usage.
#include <cstdio>
#include <exception>

#include "tools/commands.h"

#ifndef RAVLT_VERSION
#error "RAVLT_VERSION must be defined by the build"
#endif

int main(int argc, char** argv) {
  CLI::App app{"ravlt: an inference engine for RAVLT vision models"};
  app.set_version_flag("--version", "ravlt " RAVLT_VERSION);
  app.require_subcommand(1);
  const ravlt::tools::Runner convert = ravlt::tools::add_convert_command(app);
  const ravlt::tools::Runner inspect = ravlt::tools::add_inspect_command(app);
  const ravlt::tools::Runner run = ravlt::tools::add_run_command(app);
  const ravlt::tools::Runner bench = ravlt::tools::add_bench_command(app);
  const ravlt::tools::Runner preprocess = ravlt::tools::add_preprocess_command(app);
  const ravlt::tools::Runner classify = ravlt::tools::add_classify_command(app);
  const ravlt::tools::Runner embed = ravlt::tools::add_embed_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version end parsing with status 0; every usage error
    // (CLI11 has a status per kind, 101 to 113) is the documented 2.
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    if (app.got_subcommand("convert")) return convert();
    if (app.got_subcommand("inspect")) return inspect();
    if (app.got_subcommand("run")) return run();
    if (app.got_subcommand("bench")) return bench();
    if (app.got_subcommand("preprocess")) return preprocess();
    if (app.got_subcommand("classify")) return classify();
    if (app.got_subcommand("embed")) return embed();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ravlt: error: %s\n", e.what());
    return 1;
  }
  return 2;
}
