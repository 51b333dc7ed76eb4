# Turns a text file of class names (one per line) into a C++ source file that
# defines ravlt::imagenet_labels(). Run as: cmake -DINPUT=... -DOUTPUT=... -P
file(STRINGS "${INPUT}" lines ENCODING UTF-8)
set(body "")
foreach(line IN LISTS lines)
  string(REPLACE "\\" "\\\\" line "${line}")
  string(REPLACE "\"" "\\\"" line "${line}")
  string(APPEND body "      \"${line}\",\n")
endforeach()
file(WRITE "${OUTPUT}.tmp"
"// Generated from ${INPUT} by cmake/embed_labels.cmake. Do not edit.
#include \"ravlt/convert.h\"

namespace ravlt {

const std::vector<std::string>& imagenet_labels() {
  static const std::vector<std::string> kLabels = {
${body}  };
  return kLabels;
}

}  // namespace ravlt
")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
