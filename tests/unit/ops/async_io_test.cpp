// The async_io op (include/deepspeed/async_io.h): tensors go to files and come back bit for
// bit, on io_uring and on the threads fallback, with the queue settings DeepSpeed has
// (single_submit, overlap_events, several threads); sizes that are no multiple of the block
// size, file offsets, more transfers than the queue is deep, the sync calls, O_DIRECT and
// the page cache; and the errors: a read past the end of a file, a missing directory, an I/O
// error at wait(), tensors that cannot be transferred in place. Every test skips, saying
// why, in a build without the op.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <torch/torch.h>

#include <deepspeed/async_io.h>
#include <deepspeed/config.h>

namespace deepspeed::ops {
namespace {

namespace fs = std::filesystem;

// A tensor of `count` elements of `dtype` whose bytes are random (every bit pattern, NaNs too).
torch::Tensor random_bits(int64_t count, torch::ScalarType dtype, int seed) {
  torch::manual_seed(seed);
  const int64_t bytes = count * static_cast<int64_t>(c10::elementSize(dtype));
  return torch::randint(0, 256, {bytes}, torch::kUInt8).view(dtype);
}

bool same_bytes(const torch::Tensor& a, const torch::Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.data_ptr(), b.data_ptr(), a.nbytes()) == 0;
}

std::vector<char> file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// What the message of the AioError thrown by `f` says ("" and a failure if none is thrown).
template <typename F>
std::string aio_error(F&& f) {
  try {
    f();
  } catch (const AioError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an AioError";
  return "";
}

class AsyncIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!async_io_built()) {
      GTEST_SKIP() << io_uring_unavailable_reason();  // "this build has no async_io op (why)"
    }
    std::string pattern = (fs::temp_directory_path() / "ds_async_io_XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

struct Setting {
  const char* name;
  AioOptions options;
};

void PrintTo(const Setting& s, std::ostream* os) { *os << s.name; }

AioOptions with(AioBackend backend, int64_t block_size, int64_t queue_depth, bool single_submit, bool overlap_events,
                int64_t threads) {
  AioOptions o;
  o.backend = backend;
  o.block_size = block_size;
  o.queue_depth = queue_depth;
  o.single_submit = single_submit;
  o.overlap_events = overlap_events;
  o.intra_op_parallelism = threads;
  return o;
}

// Small blocks, so that every transfer is many pieces and the queues fill up.
const Setting kSettings[] = {
    {"io_uring", with(AioBackend::IoUring, 4096, 8, false, true, 1)},
    {"io_uring_single_submit_sequential", with(AioBackend::IoUring, 4096, 4, true, false, 1)},
    {"io_uring_3_threads", with(AioBackend::IoUring, 8192, 2, false, true, 3)},
    {"threads", with(AioBackend::Threads, 4096, 8, false, true, 1)},
    {"threads_3", with(AioBackend::Threads, 4096, 8, false, false, 3)},
};

class AsyncIoSettingsTest : public AsyncIoTest, public ::testing::WithParamInterface<Setting> {
 protected:
  void SetUp() override {
    AsyncIoTest::SetUp();
    if (IsSkipped()) return;
    if (GetParam().options.backend == AioBackend::IoUring) {
      if (const std::string why = io_uring_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    }
    aio_ = std::make_unique<AioHandle>(GetParam().options);
  }
  std::unique_ptr<AioHandle> aio_;
};

TEST_P(AsyncIoSettingsTest, RoundTripsFloat32Bf16Int64BitForBit) {
  const int64_t n = 3 * 4096 + 77;  // elements; no dtype makes this a multiple of the block
  int seed = 1;
  for (auto dtype : {torch::kFloat32, torch::kBFloat16, torch::kInt64}) {
    const torch::Tensor out = random_bits(n, dtype, seed++).reshape({n});
    const std::string path = file(std::string("t_") + c10::toString(dtype));
    aio_->async_pwrite(out, path);
    EXPECT_EQ(aio_->wait(), 1);
    EXPECT_EQ(fs::file_size(path), out.nbytes());
    torch::Tensor in = torch::zeros({n}, torch::TensorOptions().dtype(dtype));
    aio_->async_pread(in, path);
    EXPECT_EQ(aio_->wait(), 1);
    EXPECT_TRUE(same_bytes(in, out)) << c10::toString(dtype);
  }
}

TEST_P(AsyncIoSettingsTest, SizesThatAreNoMultipleOfTheBlockSize) {
  for (int64_t bytes : {int64_t{1}, int64_t{4095}, int64_t{4097}, int64_t{5 * 4096 + 5}, int64_t{0}}) {
    const torch::Tensor out = random_bits(bytes, torch::kUInt8, static_cast<int>(bytes));
    const std::string path = file("size_" + std::to_string(bytes));
    aio_->sync_pwrite(out, path);
    torch::Tensor in = torch::full({bytes}, 0xAB, torch::kUInt8);
    aio_->sync_pread(in, path);
    EXPECT_TRUE(same_bytes(in, out)) << bytes << " bytes";
    EXPECT_EQ(fs::file_size(path), static_cast<uintmax_t>(bytes));
  }
}

TEST_P(AsyncIoSettingsTest, TransfersAtFileOffsets) {
  const std::string path = file("offsets");
  const torch::Tensor a = random_bits(5000, torch::kUInt8, 1);
  const torch::Tensor b = random_bits(7777, torch::kUInt8, 2);
  const torch::Tensor c = random_bits(3 * 1024, torch::kFloat32, 3);  // 12 KiB at 1 MiB: a hole before it
  aio_->async_pwrite(a, path, 0);
  aio_->async_pwrite(b, path, 5000);
  aio_->async_pwrite(c, path, 1 << 20);
  EXPECT_EQ(aio_->wait(), 3);
  ASSERT_EQ(fs::file_size(path), (1u << 20) + c.nbytes());

  const auto bytes = file_bytes(path);
  EXPECT_EQ(std::memcmp(bytes.data(), a.data_ptr(), 5000), 0);
  EXPECT_EQ(std::memcmp(bytes.data() + 5000, b.data_ptr(), 7777), 0);
  EXPECT_TRUE(std::all_of(bytes.begin() + 5000 + 7777, bytes.begin() + (1 << 20), [](char x) { return x == 0; }));

  torch::Tensor b_in = torch::zeros_like(b);
  torch::Tensor c_in = torch::zeros_like(c);
  aio_->async_pread(c_in, path, 1 << 20);
  aio_->async_pread(b_in, path, 5000);
  EXPECT_EQ(aio_->wait(), 2);
  EXPECT_TRUE(same_bytes(b_in, b));
  EXPECT_TRUE(same_bytes(c_in, c));
  // A write at an offset leaves the rest of the file as it was: never truncated.
  aio_->sync_pwrite(random_bits(10, torch::kUInt8, 4), path, 100);
  EXPECT_EQ(fs::file_size(path), (1u << 20) + c.nbytes());
}

TEST_P(AsyncIoSettingsTest, ManyMoreTransfersThanTheQueueIsDeep) {
  // 48 transfers of 5 pieces and a bit each, against queues 2 to 8 deep.
  constexpr int kCount = 48;
  std::vector<torch::Tensor> out, in;
  for (int i = 0; i < kCount; ++i) {
    out.push_back(random_bits(5 * 4096 + 3 * i + 1, torch::kUInt8, 100 + i));
    in.push_back(torch::zeros_like(out.back()));
  }
  const std::string shared = file("shared");
  int64_t offset = 0;
  std::vector<int64_t> offsets;
  for (int i = 0; i < kCount; ++i) {
    // Half to files of their own, half to one file side by side.
    if (i % 2 == 0) {
      aio_->async_pwrite(out[i], file("many_" + std::to_string(i)));
    } else {
      aio_->async_pwrite(out[i], shared, offset);
    }
    offsets.push_back(offset);
    if (i % 2 == 1) offset += static_cast<int64_t>(out[i].nbytes());
  }
  EXPECT_EQ(aio_->pending(), kCount);
  EXPECT_EQ(aio_->wait(), kCount);
  EXPECT_EQ(aio_->pending(), 0);
  for (int i = 0; i < kCount; ++i) {
    if (i % 2 == 0) {
      aio_->async_pread(in[i], file("many_" + std::to_string(i)));
    } else {
      aio_->async_pread(in[i], shared, offsets[i]);
    }
  }
  EXPECT_EQ(aio_->wait(), kCount);
  for (int i = 0; i < kCount; ++i) EXPECT_TRUE(same_bytes(in[i], out[i])) << "transfer " << i;
  EXPECT_EQ(aio_->wait(), 0);  // nothing left
}

TEST_P(AsyncIoSettingsTest, SyncCallsFinishTheirOwnTransferOnly) {
  const torch::Tensor x = random_bits(10000, torch::kFloat32, 5);
  const torch::Tensor y = random_bits(3000, torch::kInt64, 6);
  aio_->async_pwrite(x, file("x"));
  aio_->sync_pwrite(y, file("y"));
  EXPECT_EQ(aio_->pending(), 1);  // x is still to be waited for
  torch::Tensor y_in = torch::empty_like(y);
  aio_->sync_pread(y_in, file("y"));
  EXPECT_TRUE(same_bytes(y_in, y));
  EXPECT_EQ(aio_->wait(), 1);
  torch::Tensor x_in = torch::empty_like(x);
  aio_->sync_pread(x_in, file("x"));
  EXPECT_TRUE(same_bytes(x_in, x));
  EXPECT_EQ(aio_->pending(), 0);
}

TEST_P(AsyncIoSettingsTest, KeepsTheTensorAliveAndTheDestructorWaits) {
  const torch::Tensor expected = random_bits(40000, torch::kUInt8, 7);
  {
    AioHandle aio(GetParam().options);
    aio.async_pwrite(expected.clone(), file("dropped"));  // the only reference is the handle's
  }
  const auto bytes = file_bytes(file("dropped"));
  ASSERT_EQ(bytes.size(), expected.nbytes());
  EXPECT_EQ(std::memcmp(bytes.data(), expected.data_ptr(), bytes.size()), 0);
}

TEST_P(AsyncIoSettingsTest, AnIoErrorAtWaitNamesTheFileOffsetAndError) {
  // /dev/full takes the open and fails every write with ENOSPC.
  const torch::Tensor t = random_bits(3 * 4096, torch::kUInt8, 8);
  const torch::Tensor ok = random_bits(100, torch::kUInt8, 9);
  aio_->async_pwrite(t, "/dev/full", 4096);
  aio_->async_pwrite(ok, file("fine"));
  const std::string e = aio_error([&] { aio_->wait(); });
  EXPECT_NE(e.find("writing /dev/full failed at file offset "), std::string::npos) << e;
  EXPECT_NE(e.find("No space left on device (errno 28)"), std::string::npos) << e;
  // Every transfer has finished (the good one too) and the handle goes on working.
  EXPECT_EQ(aio_->pending(), 0);
  EXPECT_EQ(file_bytes(file("fine")).size(), 100u);
  aio_->sync_pwrite(ok, file("after"));
  EXPECT_EQ(file_bytes(file("after")).size(), 100u);

  // A read that fails in the kernel: a directory opens, and then reading it is EISDIR.
  torch::Tensor in = torch::empty({4096}, torch::kUInt8);
  const std::string sync = aio_error([&] { aio_->sync_pread(in, dir_.string(), 0); });
  EXPECT_NE(sync.find("reading " + dir_.string() + " failed at file offset 0 (4096 bytes"), std::string::npos) << sync;
  EXPECT_NE(sync.find("Is a directory (errno 21)"), std::string::npos) << sync;
}

INSTANTIATE_TEST_SUITE_P(Queues, AsyncIoSettingsTest, ::testing::ValuesIn(kSettings),
                         [](const auto& info) { return std::string(info.param.name); });

TEST_F(AsyncIoTest, ReadPastTheEndOfTheFileIsAClearError) {
  AioHandle aio;
  const std::string path = file("short");
  aio.sync_pwrite(random_bits(100, torch::kUInt8, 1), path);
  torch::Tensor in = torch::empty({200}, torch::kUInt8);
  const std::string e = aio_error([&] { aio.async_pread(in, path); });
  EXPECT_EQ(e, "async_io: cannot read 200 bytes at file offset 0 of " + path +
                   ": the file has 100 bytes (the read would end at 200)");
  const std::string at = aio_error([&] { aio.sync_pread(in.narrow(0, 0, 50), path, 80); });
  EXPECT_EQ(at, "async_io: cannot read 50 bytes at file offset 80 of " + path +
                    ": the file has 100 bytes (the read would end at 130)");
  EXPECT_EQ(aio.pending(), 0);  // nothing was queued
  const std::string missing = aio_error([&] { aio.async_pread(in, file("absent")); });
  EXPECT_EQ(missing, "async_io: cannot open " + file("absent") + " for reading: No such file or directory (errno 2)");
}

TEST_F(AsyncIoTest, WritingIntoAMissingDirectoryIsAClearError) {
  AioHandle aio;
  const std::string path = file("no/such/dir/t.bin");
  const std::string e = aio_error([&] { aio.async_pwrite(torch::ones({8}), path); });
  EXPECT_EQ(e, "async_io: cannot open " + path + " for writing: No such file or directory (errno 2)");
  EXPECT_EQ(aio.pending(), 0);
}

TEST_F(AsyncIoTest, RefusesTensorsThatCannotBeTransferredInPlace) {
  AioHandle aio;
  const std::string path = file("refused");
  aio.sync_pwrite(torch::zeros({64}), path);
  const torch::Tensor transposed = torch::zeros({4, 4}).t();
  std::string e = aio_error([&] { aio.async_pread(transposed, path); });
  EXPECT_EQ(e, "async_io: async_pread needs a contiguous tensor; this one has sizes [4, 4] and strides [1, 4] (use "
               ".contiguous())");
  e = aio_error([&] { aio.sync_pread(torch::zeros({8, 2}).select(1, 0), path); });
  EXPECT_NE(e.find("sync_pread needs a contiguous tensor"), std::string::npos) << e;
  e = aio_error([&] { aio.async_pread(torch::empty({16}, torch::Device(torch::kMeta)), path); });
  EXPECT_EQ(e, "async_io: async_pread needs a CPU tensor; this one is on meta (copy it to the CPU first)");
  e = aio_error([&] { aio.async_pwrite(torch::empty({16}, torch::Device(torch::kMeta)), path); });
  EXPECT_NE(e.find("async_pwrite needs a CPU tensor"), std::string::npos) << e;
  e = aio_error([&] { aio.async_pwrite(torch::eye(3).to_sparse(), path); });
  EXPECT_NE(e.find("needs a dense (strided) tensor"), std::string::npos) << e;
  e = aio_error([&] { aio.async_pread(torch::Tensor(), path); });
  EXPECT_EQ(e, "async_io: async_pread: the tensor is undefined");
  EXPECT_EQ(aio.pending(), 0);
}

TEST_F(AsyncIoTest, AlignedBuffersGoAroundThePageCache) {
  AioHandle aio(with(AioBackend::Auto, 64 * 1024, 8, false, true, 2));
  const torch::Tensor example = torch::empty({0}, torch::kFloat32);
  torch::Tensor out = aio.new_cpu_locked_tensor(256 * 1024, example);  // 1 MiB
  EXPECT_EQ(out.scalar_type(), torch::kFloat32);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(out.data_ptr()) % 4096, 0u);
  out.copy_(random_bits(256 * 1024, torch::kFloat32, 11));
  aio.sync_pwrite(out, file("direct"), 8192);
  torch::Tensor in = aio.new_cpu_locked_tensor(256 * 1024, example);
  aio.sync_pread(in, file("direct"), 8192);
  EXPECT_TRUE(same_bytes(in, out));
  const AioStats s = aio.stats();
  // O_DIRECT, unless this file system refuses it (then the page cache, and said so).
  EXPECT_EQ(s.direct_transfers + s.direct_refusals, 2) << s.direct_transfers << " " << s.direct_refusals;

  // One byte off: the page cache, and the same bytes.
  torch::Tensor odd = torch::empty({4097}, torch::kUInt8).narrow(0, 1, 4096);
  odd.copy_(random_bits(4096, torch::kUInt8, 12));
  aio.sync_pwrite(odd, file("buffered"), 1);
  torch::Tensor odd_in = torch::zeros({4096}, torch::kUInt8);
  aio.sync_pread(odd_in, file("buffered"), 1);
  EXPECT_TRUE(same_bytes(odd_in, odd));
  EXPECT_EQ(aio.stats().buffered_transfers, s.buffered_transfers + 2);

  // direct_io off: always the page cache.
  AioOptions no_direct;
  no_direct.direct_io = false;
  AioHandle buffered(no_direct);
  buffered.sync_pwrite(out, file("direct"), 8192);
  EXPECT_EQ(buffered.stats().direct_transfers, 0);
  EXPECT_EQ(buffered.stats().buffered_transfers, 1);
}

TEST_F(AsyncIoTest, IsBuiltFromTheAioConfigSection) {
  const DeepSpeedConfig c = parse_config(R"({"train_batch_size": 1, "aio": {"block_size": 262144,
      "queue_depth": 16, "thread_count": 2, "single_submit": true, "overlap_events": false}})",
                                         1);
  AioHandle aio(c.aio);
  EXPECT_EQ(aio.get_block_size(), 262144);
  EXPECT_EQ(aio.get_queue_depth(), 16);
  EXPECT_EQ(aio.get_intra_op_parallelism(), 2);
  EXPECT_TRUE(aio.get_single_submit());
  EXPECT_FALSE(aio.get_overlap_events());
  const torch::Tensor t = random_bits(300000, torch::kUInt8, 13);
  aio.sync_pwrite(t, file("from_config"));
  torch::Tensor in = torch::empty_like(t);
  aio.sync_pread(in, file("from_config"));
  EXPECT_TRUE(same_bytes(in, t));

  AioConfig gds;
  gds.use_gds = true;
  EXPECT_NE(aio_error([&] { AioHandle h(gds); }).find("aio.use_gds: GPUDirect Storage"), std::string::npos);
  // DeepSpeed's positional constructor.
  AioHandle positional(1 << 20, 32, false, true, 1);
  EXPECT_EQ(positional.get_queue_depth(), 32);
}

TEST_F(AsyncIoTest, BadOptionsAreRefused) {
  AioOptions o;
  o.queue_depth = 0;
  EXPECT_EQ(aio_error([&] { AioHandle h(o); }), "async_io: queue_depth must be at least 1, got 0");
  o = {};
  o.block_size = -1;
  EXPECT_EQ(aio_error([&] { AioHandle h(o); }), "async_io: block_size must be at least 1, got -1");
}

TEST_F(AsyncIoTest, UsesIoUringWhereTheKernelAllowsIt) {
  AioHandle aio;
  const std::string why = io_uring_unavailable_reason();
  if (why.empty()) {
    EXPECT_EQ(aio.backend(), AioBackend::IoUring);
    EXPECT_EQ(aio.fallback_reason(), "");
  } else {
    EXPECT_EQ(aio.backend(), AioBackend::Threads);
    EXPECT_NE(aio.fallback_reason().find("io_uring"), std::string::npos) << aio.fallback_reason();
    GTEST_SKIP() << "io_uring is not usable here, handles use threads: " << why;
  }
}

// Runs in every build: without the op, the handle refuses to be made and says why.
TEST(AsyncIoBuild, AHandleWithoutTheOpSaysWhy) {
  if (async_io_built()) GTEST_SKIP() << "the async_io op is built; nothing to refuse";
  const std::string e = aio_error([] { AioHandle h; });
  EXPECT_NE(e.find("this build of deepspeed-cpp has no async_io op"), std::string::npos) << e;
}

}  // namespace
}  // namespace deepspeed::ops
