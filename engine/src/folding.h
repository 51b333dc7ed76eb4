// The conversion-time rewrites that change weights (design.md). Each keeps
// the network's function: tests/engine/folding_test.cpp checks every one
// against the unfolded computation.
#pragma once

#include "engine/src/host_tensor.h"

namespace ravlt::engine {

/// Inference-mode BatchNorm parameters.
struct BatchNorm {
  const HostTensor* weight;
  const HostTensor* bias;
  const HostTensor* running_mean;
  const HostTensor* running_var;
  float epsilon = 1e-5f;
};

/// BN(conv(x)) = conv'(x): scales each output channel's weights by
/// s = weight / sqrt(var + eps) and sets bias' = (bias - mean) * s + bn_bias.
/// `weight` has the output channel first (any trailing shape: conv or linear).
void fold_batchnorm(HostTensor& weight, HostTensor& bias, const BatchNorm& bn);

/// gamma * (W x + b) = W' x + b': scales output channel o of the layer
/// before a layer scale by gamma[o]. gamma has one value per output channel.
void fold_layer_scale(HostTensor& weight, HostTensor& bias, const HostTensor& gamma);

/// x + dwconv(x) = dwconv'(x) for a depthwise convolution with odd kernel
/// and "same" padding: adds 1 to each channel's centre tap.
void fold_identity_into_depthwise(HostTensor& weight);

}  // namespace ravlt::engine
