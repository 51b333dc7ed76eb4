// The subcommands of `ravlt`. Each registers its options on the app and
// returns the function that runs it once parsing succeeded.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace ravlt::tools {

using Runner = std::function<int()>;

Runner add_convert_command(CLI::App& app);
Runner add_inspect_command(CLI::App& app);
Runner add_run_command(CLI::App& app);
Runner add_bench_command(CLI::App& app);
Runner add_preprocess_command(CLI::App& app);
Runner add_classify_command(CLI::App& app);
Runner add_embed_command(CLI::App& app);

}  // namespace ravlt::tools
