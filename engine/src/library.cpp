// libravlt.so: the public API of engine/include/ravlt/, its code linked in
// whole from the static libraries (engine/install.cmake). This file only
// gives the shared library a source of its own.
#include "ravlt/model.h"
