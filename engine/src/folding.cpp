#include "engine/src/folding.h"

#include <cmath>

#include "ravlt/error.h"

namespace ravlt::engine {
namespace {

void check_per_channel(const HostTensor& weight, const HostTensor& v, const char* what) {
  if (weight.shape.empty() || v.numel() != static_cast<size_t>(weight.dim(0))) {
    throw Error(std::string(what) + " has " + std::to_string(v.numel()) +
                " values for a layer with " +
                std::to_string(weight.shape.empty() ? 0 : weight.dim(0)) + " output channels");
  }
}

}  // namespace

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

void fold_batchnorm(HostTensor& weight, HostTensor& bias, const BatchNorm& bn) {
  check_per_channel(weight, bias, "bias");
  check_per_channel(weight, *bn.weight, "BatchNorm weight");
  check_per_channel(weight, *bn.bias, "BatchNorm bias");
  check_per_channel(weight, *bn.running_mean, "BatchNorm running_mean");
  check_per_channel(weight, *bn.running_var, "BatchNorm running_var");
  const size_t out = static_cast<size_t>(weight.dim(0));
  const size_t per_channel = weight.numel() / out;
  for (size_t o = 0; o < out; ++o) {
    // In double: the folded float32 weights then differ from the exact
    // product by one rounding, not by the rounding of each step.
    const double s = static_cast<double>(bn.weight->data[o]) /
                     std::sqrt(static_cast<double>(bn.running_var->data[o]) + bn.epsilon);
    float* w = weight.data.data() + o * per_channel;
    for (size_t i = 0; i < per_channel; ++i) w[i] = static_cast<float>(w[i] * s);
    bias.data[o] = static_cast<float>(
        (static_cast<double>(bias.data[o]) - bn.running_mean->data[o]) * s + bn.bias->data[o]);
  }
}

void fold_layer_scale(HostTensor& weight, HostTensor& bias, const HostTensor& gamma) {
  check_per_channel(weight, bias, "bias");
  check_per_channel(weight, gamma, "layer scale");
  const size_t out = static_cast<size_t>(weight.dim(0));
  const size_t per_channel = weight.numel() / out;
  for (size_t o = 0; o < out; ++o) {
    float* w = weight.data.data() + o * per_channel;
    for (size_t i = 0; i < per_channel; ++i) w[i] *= gamma.data[o];
    bias.data[o] *= gamma.data[o];
  }
}

void fold_identity_into_depthwise(HostTensor& weight) {
  if (weight.shape.size() != 4 || weight.dim(1) != 1 || weight.dim(2) % 2 == 0 ||
      weight.dim(3) % 2 == 0) {
    throw Error("identity fold needs a depthwise weight (C, 1, K, K) with odd K, got " +
                shape_string(weight.shape));
  }
  const int64_t kh = weight.dim(2), kw = weight.dim(3);
  const size_t centre = static_cast<size_t>((kh / 2) * kw + kw / 2);
  for (int64_t c = 0; c < weight.dim(0); ++c) {
    weight.data[static_cast<size_t>(c * kh * kw) + centre] += 1.0f;
  }
}

}  // namespace ravlt::engine
