// The smallest embedding of ravlt: classify one image, print the top 5.
//   classify_image MODEL.rvlt IMAGE
#include <cstdio>

#include <ravlt/classifier.h>
#include <ravlt/error.h>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s MODEL.rvlt IMAGE\n", argv[0]);
    return 2;
  }
  try {
    ravlt::Classifier classifier(ravlt::Model::load(argv[1]));
    for (const ravlt::Prediction& p : classifier.classify_file(argv[2])) {
      std::printf("%.4f  %s\n", p.probability, p.label.c_str());
    }
  } catch (const ravlt::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
