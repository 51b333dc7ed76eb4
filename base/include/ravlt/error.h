// The one error type of the engine.
//
// Every layer reports failure by throwing ravlt::Error with a message that
// names the file, key, node or shape at fault. Nothing in the engine aborts
// the process on bad input; callers catch ravlt::Error (or std::exception).
#pragma once

#include <stdexcept>
#include <string>

#include "ravlt/export.h"

namespace ravlt {

/// Thrown for every failure the engine reports: bad files, bad shapes,
/// I/O errors. what() is a single line fit to show a user.
class RAVLT_API Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
  // Defined in base/error.cpp: the key function, so that the type's
  // typeinfo and vtable live in (and are exported from) libravlt.so and a
  // program catches what the library throws.
  ~Error() override;
};

}  // namespace ravlt
