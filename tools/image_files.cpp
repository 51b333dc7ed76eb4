#include "tools/image_files.h"

#include <algorithm>
#include <filesystem>

#include "ravlt/error.h"

namespace ravlt::tools {
namespace {

bool is_image_name(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp";
}

}  // namespace

std::vector<std::string> collect_images(const std::vector<std::string>& inputs) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  for (const std::string& in : inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      std::vector<std::string> found;
      fs::recursive_directory_iterator it(in, fs::directory_options::skip_permission_denied, ec);
      if (ec) throw Error(in + ": cannot list: " + ec.message());
      for (const fs::directory_entry& e : it) {
        if (e.is_regular_file(ec) && is_image_name(e.path())) found.push_back(e.path().string());
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else {
      files.push_back(in);  // a missing file becomes its own error line
    }
  }
  return files;
}

std::string not_a_classifier(const std::string& model) {
  return model +
         " is a backbone: it outputs feature maps, not classes; write them with "
         "`ravlt run -m " +
         model + " -i input.npy -o out.npz`";
}

}  // namespace ravlt::tools
