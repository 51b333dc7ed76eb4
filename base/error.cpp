#include "ravlt/error.h"

namespace ravlt {

Error::~Error() = default;

}  // namespace ravlt
