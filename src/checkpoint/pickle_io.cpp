// torch.save's container: a zip whose folder holds data.pkl (the pickle) and data/<key> (one
// record per tensor storage), written and read with LibTorch's own zip code.
#include "checkpoint/pickle_io.h"

#include <cstring>

#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/read_adapter_interface.h>
#include <torch/torch.h>

#include <deepspeed/errors.h>

#include "checkpoint/python_pickle.h"

namespace deepspeed::checkpoint {
namespace {

class BytesReader final : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit BytesReader(const std::vector<char>& bytes) : bytes_(bytes) {}
  size_t size() const override { return bytes_.size(); }
  size_t read(uint64_t pos, void* buf, size_t n, const char* /*what*/) const override {
    if (pos >= bytes_.size()) return 0;
    n = std::min<size_t>(n, bytes_.size() - pos);
    std::memcpy(buf, bytes_.data() + pos, n);
    return n;
  }

 private:
  const std::vector<char>& bytes_;
};

std::string first_line(const c10::Error& e) {
  const std::string msg = e.what_without_backtrace();
  return msg.substr(0, msg.find('\n'));
}

}  // namespace

std::vector<char> to_pickle_bytes(const c10::IValue& value) {
  std::vector<torch::Tensor> storages;
  const auto pickle = write_python_pickle(value, storages);
  std::vector<char> out;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t n) {
    const auto* p = static_cast<const char*>(data);
    out.insert(out.end(), p, p + n);
    return n;
  });
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  for (size_t i = 0; i < storages.size(); ++i) {
    const auto& t = storages[i];
    writer.writeRecord("data/" + std::to_string(i), t.data_ptr(), static_cast<size_t>(t.numel()) * t.element_size());
  }
  writer.writeEndOfFile();
  return out;
}

c10::IValue from_pickle_bytes(const std::vector<char>& bytes, const std::string& file) {
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
  std::string pickle;
  try {
    reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(std::make_shared<BytesReader>(bytes));
    auto [data, size] = reader->getRecord("data.pkl");
    pickle.assign(static_cast<const char*>(data.get()), size);
  } catch (const c10::Error& e) {
    throw CheckpointError("checkpoint file " + file + " cannot be read as a torch pickle archive: " + first_line(e));
  }
  auto load_storage = [&](const std::string& key, torch::ScalarType dtype, int64_t numel) {
    const std::string name = "data/" + key;
    try {
      if (!reader->hasRecord(name)) throw CheckpointError("checkpoint file " + file + " has no record " + name);
      auto [data, size] = reader->getRecord(name);
      const auto expected = static_cast<size_t>(numel) * c10::elementSize(dtype);
      if (size != expected) {
        throw CheckpointError("checkpoint file " + file + ": record " + name + " has " + std::to_string(size) +
                              " bytes, its tensor needs " + std::to_string(expected));
      }
      auto t = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
      if (size > 0) std::memcpy(t.data_ptr(), data.get(), size);
      return t;
    } catch (const c10::Error& e) {
      throw CheckpointError("checkpoint file " + file + ": record " + name + ": " + first_line(e));
    }
  };
  return read_python_pickle(pickle, load_storage, file);
}

}  // namespace deepspeed::checkpoint
