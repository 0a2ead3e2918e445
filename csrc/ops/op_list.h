// The op list: one line per op folder. module.cpp binds each; adding an op = one line here.
#pragma once
#define FV_FOR_EACH_OP(X) \
  X(relu) \
  X(peak) \
  X(gemm) \
  X(conv2d) \
  X(pool2d) \
  X(softmax_ce) \
  X(optim)
