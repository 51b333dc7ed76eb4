// The one error type of the engine.
//
// Every layer reports failure by throwing ravlt::Error with a message that
// names the file, key, node or shape at fault. Nothing in the engine aborts
// the process on bad input; callers catch ravlt::Error (or std::exception).
#pragma once

#include <stdexcept>
#include <string>

namespace ravlt {

/// Thrown for every failure the engine reports: bad files, bad shapes,
/// I/O errors. what() is a single line fit to show a user.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace ravlt
