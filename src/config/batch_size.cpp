// DeepSpeed's DeepSpeedConfig._configure_train_batch_size, with Python's floor division so
// that odd inputs fail with the same messages as in DeepSpeed.
#include <fmt/format.h>

#include <deepspeed/config.h>

namespace deepspeed {
namespace {

// Python's // (rounds toward negative infinity; C++'s / truncates toward zero).
int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// mb * gas * w; counts are 64-bit, and a product past that is an input error, not UB.
int64_t product(int64_t mb, int64_t gas, int64_t w) {
  int64_t partial = 0;
  int64_t result = 0;
  if (__builtin_mul_overflow(mb, gas, &partial) || __builtin_mul_overflow(partial, w, &result)) {
    throw ConfigError("train_batch_size",
                      fmt::format("micro batch {} * gradient accumulation steps {} * world size {} does not fit "
                                  "in 64 bits",
                                  mb, gas, w));
  }
  return result;
}

}  // namespace

BatchSizes resolve_batch_sizes(std::optional<int64_t> train_batch_size,
                               std::optional<int64_t> micro_batch_per_gpu,
                               std::optional<int64_t> gradient_accumulation_steps, int64_t world_size) {
  if (world_size <= 0) {
    throw ConfigError("", fmt::format("the data-parallel world size must be positive, got {}", world_size));
  }
  const int64_t w = world_size;
  int64_t tb = 0;
  int64_t mb = 0;
  int64_t gas = 0;
  // A zero divisor can only come from a value that check 2 or 3 below rejects anyway; the
  // derived value is then left at 0 so that the same message appears.
  if (train_batch_size && micro_batch_per_gpu && gradient_accumulation_steps) {
    tb = *train_batch_size;
    mb = *micro_batch_per_gpu;
    gas = *gradient_accumulation_steps;
  } else if (train_batch_size && micro_batch_per_gpu) {
    tb = *train_batch_size;
    mb = *micro_batch_per_gpu;
    gas = mb == 0 ? 0 : floor_div(floor_div(tb, mb), w);
  } else if (train_batch_size && gradient_accumulation_steps) {
    tb = *train_batch_size;
    gas = *gradient_accumulation_steps;
    mb = gas == 0 ? 0 : floor_div(floor_div(tb, w), gas);
  } else if (micro_batch_per_gpu && gradient_accumulation_steps) {
    mb = *micro_batch_per_gpu;
    gas = *gradient_accumulation_steps;
    tb = product(mb, gas, w);
  } else if (train_batch_size) {
    tb = *train_batch_size;
    gas = 1;
    mb = floor_div(tb, w);
  } else if (micro_batch_per_gpu) {
    mb = *micro_batch_per_gpu;
    gas = 1;
    tb = product(mb, 1, w);
  } else {
    throw ConfigError("train_batch_size",
                      "Either train_batch_size or train_micro_batch_size_per_gpu needs to be provided");
  }

  if (tb <= 0) throw ConfigError("train_batch_size", fmt::format("Train batch size: {} has to be greater than 0", tb));
  if (mb <= 0) {
    throw ConfigError("train_micro_batch_size_per_gpu",
                      fmt::format("Micro batch size per gpu: {} has to be greater than 0", mb));
  }
  if (gas <= 0) {
    throw ConfigError("gradient_accumulation_steps",
                      fmt::format("Gradient accumulation steps: {} has to be greater than 0", gas));
  }
  if (tb != product(mb, gas, w)) {
    throw ConfigError("train_batch_size",
                      fmt::format("Check batch related parameters. train_batch_size is not equal to "
                                  "micro_batch_per_gpu * gradient_acc_step * world_size {} != {} * {} * {}",
                                  tb, mb, gas, w));
  }
  return BatchSizes{tb, mb, gas};
}

}  // namespace deepspeed
