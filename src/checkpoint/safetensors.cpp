#include "checkpoint/safetensors.h"

#include <bit>
#include <cstring>

#include <nlohmann/json.hpp>

#include <deepspeed/errors.h>

#include "checkpoint/ivalue_conversion.h"

namespace deepspeed::checkpoint {

std::string safetensors_dtype(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat64: return "F64";
    case torch::kFloat32: return "F32";
    case torch::kFloat16: return "F16";
    case torch::kBFloat16: return "BF16";
    case torch::kInt64: return "I64";
    case torch::kInt32: return "I32";
    case torch::kInt16: return "I16";
    case torch::kInt8: return "I8";
    case torch::kUInt8: return "U8";
    case torch::kBool: return "BOOL";
    default: throw CheckpointError(std::string("safetensors cannot hold tensors of type ") + c10::toString(type));
  }
}

std::vector<char> safetensors_bytes(const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                                    const std::map<std::string, std::string>& metadata) {
  static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");
  // nlohmann::ordered_json keeps the tensors in the order given (the format does not
  // require it, but readers show tensors in file order).
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    auto c = tensor_for_file(t);
    const uint64_t n = static_cast<uint64_t>(c.numel()) * c.element_size();
    header[name] = {{"dtype", safetensors_dtype(c.scalar_type())}, {"shape", c.sizes().vec()},
                    {"data_offsets", {offset, offset + n}}};
    offset += n;
    data.push_back(c);
  }
  std::string text = header.dump();
  // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
  text.append((8 - text.size() % 8) % 8, ' ');
  std::vector<char> out(8 + text.size() + offset);
  const uint64_t len = text.size();
  std::memcpy(out.data(), &len, 8);
  std::memcpy(out.data() + 8, text.data(), text.size());
  char* p = out.data() + 8 + text.size();
  for (const auto& c : data) {
    const size_t n = static_cast<size_t>(c.numel()) * c.element_size();
    if (n) std::memcpy(p, c.data_ptr(), n);
    p += n;
  }
  return out;
}

}  // namespace deepspeed::checkpoint
