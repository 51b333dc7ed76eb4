// The image files a command was given: files as named, folders searched.
#pragma once

#include <string>
#include <vector>

namespace ravlt::tools {

/// Files as given (whatever their name), and the JPEG, PNG and BMP files
/// under the folders given, recursively, sorted by path for a stable
/// order. Throws ravlt::Error on a folder that cannot be listed.
std::vector<std::string> collect_images(const std::vector<std::string>& inputs);

/// The one-line error of an image command (classify, embed) given a
/// backbone.
std::string not_a_classifier(const std::string& model);

}  // namespace ravlt::tools
