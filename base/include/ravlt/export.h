// Which of the library's symbols the shared libravlt.so exports.
//
// Everything is compiled with -fvisibility=hidden (CMakeLists.txt); only
// declarations marked RAVLT_API, the public C++ API, are visible outside
// the library. Internal code (formats/, runtime/, engine/src/) has no
// export macro and stays private to libravlt.so.
#pragma once

#define RAVLT_API __attribute__((visibility("default")))
