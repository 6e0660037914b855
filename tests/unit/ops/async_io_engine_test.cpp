// The async_io engine (ops/io/async_io/io_engine.h) under faults the kernel seldom produces
// on demand, injected through its queue seam (EngineOptions::queue_factory): short reads and
// writes, EINTR/EAGAIN, a file system that takes O_DIRECT at open and refuses it per request,
// end of file while reading, a write that moves nothing, a queue that breaks. Each must end
// in the right bytes or in an AioError that says what happened where.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "deepspeed/errors.h"
#include "io/async_io/io_engine.h"

namespace deepspeed::ops::aio {
namespace {

namespace fs = std::filesystem;

// Runs each request with pread/pwrite, as the blocking queue does, after `rule` has seen it:
// the rule may shorten the request, or return a result that replaces running it.
using Rule = std::function<std::optional<int64_t>(IoOp& op)>;

class FaultyQueue final : public IoQueue {
 public:
  explicit FaultyQueue(Rule rule) : rule_(std::move(rule)) {}
  void prepare(const IoOp& op) override { ops_.push_back(op); }
  void submit() override {}
  void collect(int64_t, std::vector<IoResult>& out) override {
    for (IoOp op : ops_) {
      if (auto forced = rule_(op)) {
        out.push_back({op.tag, *forced});
        continue;
      }
      const ssize_t r = op.direction == Direction::Read
                            ? ::pread(op.fd, op.buffer, static_cast<size_t>(op.length), op.file_offset)
                            : ::pwrite(op.fd, op.buffer, static_cast<size_t>(op.length), op.file_offset);
      out.push_back({op.tag, r < 0 ? -static_cast<int64_t>(errno) : static_cast<int64_t>(r)});
    }
    ops_.clear();
  }
  const char* name() const override { return "faulty"; }

 private:
  Rule rule_;
  std::vector<IoOp> ops_;
};

EngineOptions faulty(Rule rule, int64_t threads = 1) {
  EngineOptions o;
  o.block_size = 4096;
  o.queue_depth = 4;
  o.threads = threads;
  o.queue_factory = [rule](int64_t) { return std::make_unique<FaultyQueue>(rule); };
  return o;
}

std::vector<char> random_bytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<char> v(n);
  for (auto& c : v) c = static_cast<char>(rng());
  return v;
}

std::string aio_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const AioError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an AioError";
  return "";
}

class AsyncIoEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "ds_aio_engine_XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  // Writes `data` and reads it back through `engine`; true when the bytes came back.
  bool round_trip(Engine& engine, const std::vector<char>& data, const std::string& path, int64_t offset = 0) {
    auto out = data;
    engine.submit(Direction::Write, out.data(), static_cast<int64_t>(out.size()), path, offset);
    engine.wait_all();
    std::vector<char> in(data.size(), 0);
    engine.wait(engine.submit(Direction::Read, in.data(), static_cast<int64_t>(in.size()), path, offset));
    return in == data;
  }

  fs::path dir_;
};

TEST_F(AsyncIoEngineTest, ShortTransfersAreContinuedToTheEnd) {
  std::atomic<int> requests{0};
  Engine engine(faulty([&](IoOp& op) -> std::optional<int64_t> {
    ++requests;
    op.length = std::min<int64_t>(op.length, 777);  // the kernel moves at most 777 bytes
    return std::nullopt;
  }, 2));
  const auto data = random_bytes(10 * 4096 + 123, 1);
  EXPECT_TRUE(round_trip(engine, data, file("short"), 5));
  EXPECT_GE(requests.load(), 2 * static_cast<int>(data.size() / 777));
}

TEST_F(AsyncIoEngineTest, InterruptedRequestsAreRetried) {
  std::mutex mutex;
  std::set<void*> seen;
  Engine engine(faulty([&](IoOp& op) -> std::optional<int64_t> {
    std::lock_guard<std::mutex> lock(mutex);
    if (seen.insert(op.tag).second) return seen.size() % 2 ? -EINTR : -EAGAIN;  // every first attempt
    return std::nullopt;
  }));
  EXPECT_TRUE(round_trip(engine, random_bytes(5 * 4096, 2), file("eintr")));
}

TEST_F(AsyncIoEngineTest, RequestsThatNeverStopBeingInterruptedFail) {
  Engine engine(faulty([](IoOp&) -> std::optional<int64_t> { return -EAGAIN; }));
  auto data = random_bytes(100, 3);
  engine.submit(Direction::Write, data.data(), 100, file("again"), 0);
  const std::string e = aio_error([&] { engine.wait_all(); });
  EXPECT_EQ(e, "async_io: writing " + file("again") +
                   " failed at file offset 0 (100 bytes): Resource temporarily unavailable (errno 11)");
}

TEST_F(AsyncIoEngineTest, EndOfFileWhileReadingIsAnErrorAtWait) {
  // The file was long enough when the read was queued, and is cut short while it runs.
  Engine writer(EngineOptions{});
  auto data = random_bytes(3 * 4096, 4);
  writer.wait(writer.submit(Direction::Write, data.data(), 3 * 4096, file("cut"), 0));
  Engine engine(faulty([](IoOp& op) -> std::optional<int64_t> {
    if (op.file_offset >= 4096) return 0;  // end of file from 4096 on
    return std::nullopt;
  }));
  std::vector<char> in(3 * 4096);
  engine.submit(Direction::Read, in.data(), 3 * 4096, file("cut"), 0);
  const std::string e = aio_error([&] { engine.wait_all(); });
  EXPECT_EQ(e, "async_io: reading " + file("cut") +
                   ": end of file at offset 4096; the read needs bytes [0, 12288) and the file has 12288 bytes");
  EXPECT_EQ(engine.pending(), 0);
}

TEST_F(AsyncIoEngineTest, AWriteThatMovesNothingIsAnError) {
  Engine engine(faulty([](IoOp&) -> std::optional<int64_t> { return 0; }));
  auto data = random_bytes(10, 5);
  const std::string e =
      aio_error([&] { engine.wait(engine.submit(Direction::Write, data.data(), 10, file("w0"), 7)); });
  EXPECT_EQ(e, "async_io: writing " + file("w0") + " at file offset 7: no bytes written of 10");
}

TEST_F(AsyncIoEngineTest, ODirectRefusedPerRequestFallsBackToThePageCache) {
  std::atomic<int> refused{0};
  Engine engine(faulty([&](IoOp& op) -> std::optional<int64_t> {
    if ((::fcntl(op.fd, F_GETFL) & O_DIRECT) != 0) {
      ++refused;
      return -EINVAL;
    }
    return std::nullopt;
  }));
  constexpr size_t kBytes = 16 * 4096;
  void* raw = nullptr;
  ASSERT_EQ(::posix_memalign(&raw, 4096, kBytes), 0);
  std::unique_ptr<char, decltype(&std::free)> buffer(static_cast<char*>(raw), &std::free);
  const auto data = random_bytes(kBytes, 6);
  std::memcpy(buffer.get(), data.data(), kBytes);
  engine.wait(engine.submit(Direction::Write, buffer.get(), kBytes, file("direct"), 4096));
  if (engine.stats().direct_transfers == 0) {
    GTEST_SKIP() << "the file system of " << dir_ << " takes no O_DIRECT at open; nothing to refuse";
  }
  std::memset(buffer.get(), 0, kBytes);
  engine.wait(engine.submit(Direction::Read, buffer.get(), kBytes, file("direct"), 4096));
  EXPECT_EQ(std::memcmp(buffer.get(), data.data(), kBytes), 0);
  EXPECT_EQ(engine.stats().direct_transfers, 2);
  EXPECT_EQ(refused.load(), 32);  // every piece once, then through the page cache
  EXPECT_EQ(engine.stats().direct_refusals, 32);
}

TEST_F(AsyncIoEngineTest, EveryFailureIsCountedInTheMessage) {
  Engine engine(faulty([](IoOp&) -> std::optional<int64_t> { return -EIO; }));
  std::vector<std::vector<char>> buffers;
  for (int i = 0; i < 3; ++i) {
    buffers.push_back(random_bytes(100, 7));
    engine.submit(Direction::Write, buffers.back().data(), 100, file("eio" + std::to_string(i)), 0);
  }
  auto ok = random_bytes(0, 8);
  engine.submit(Direction::Write, ok.data(), 0, file("empty"), 0);  // zero bytes: done at once
  const std::string e = aio_error([&] { engine.wait_all(); });
  EXPECT_NE(e.find("Input/output error (errno 5) (and 2 more of the 4 transfers failed)"), std::string::npos) << e;
}

TEST_F(AsyncIoEngineTest, AQueueThatBreaksFailsWhatIsQueuedAndWhatComesAfter) {
  Engine engine(faulty([](IoOp&) -> std::optional<int64_t> { throw AioError("io_uring_wait_cqe failed: (test)"); }));
  auto data = random_bytes(100, 9);
  engine.submit(Direction::Write, data.data(), 100, file("broken"), 0);
  EXPECT_EQ(aio_error([&] { engine.wait_all(); }),
            "async_io: writing " + file("broken") + ": io_uring_wait_cqe failed: (test)");
  engine.submit(Direction::Write, data.data(), 100, file("after"), 0);
  EXPECT_EQ(aio_error([&] { engine.wait_all(); }),
            "async_io: writing " + file("after") + ": io_uring_wait_cqe failed: (test)");
}

TEST_F(AsyncIoEngineTest, IoUringIsAskedForAndGivenOrRefusedWithTheReason) {
  EngineOptions o;
  o.queue = QueueKind::IoUring;
  const std::string why = io_uring_unavailable_reason();
  if (why.empty()) {
    Engine engine(o);
    EXPECT_STREQ(engine.queue_name(), "io_uring");
    EXPECT_TRUE(round_trip(engine, random_bytes(70000, 10), file("uring")));
  } else {
    EXPECT_NE(aio_error([&] { Engine engine(o); }).find("io_uring_queue_init failed"), std::string::npos);
  }
  o.queue = QueueKind::Blocking;
  Engine blocking(o);
  EXPECT_STREQ(blocking.queue_name(), "threads");
}

TEST_F(AsyncIoEngineTest, ManyTransfersOnSeveralThreadsOfEachQueue) {
  for (QueueKind kind : {QueueKind::IoUring, QueueKind::Blocking}) {
    if (kind == QueueKind::IoUring && !io_uring_unavailable_reason().empty()) continue;
    EngineOptions o;
    o.queue = kind;
    o.block_size = 4096;
    o.queue_depth = 2;
    o.threads = 3;
    o.overlap_events = kind == QueueKind::IoUring;
    Engine engine(o);
    constexpr int kCount = 30;
    std::vector<std::vector<char>> out, in;
    for (int i = 0; i < kCount; ++i) {
      out.push_back(random_bytes(5 * 4096 + 17 * i, 100 + i));
      in.emplace_back(out.back().size(), 0);
      engine.submit(Direction::Write, out[i].data(), static_cast<int64_t>(out[i].size()),
                    file("t" + std::to_string(i)), 0);
    }
    EXPECT_EQ(engine.wait_all(), kCount);
    for (int i = 0; i < kCount; ++i) {
      const std::string path = file("t" + std::to_string(i));
      engine.submit(Direction::Read, in[i].data(), static_cast<int64_t>(in[i].size()), path, 0);
    }
    EXPECT_EQ(engine.wait_all(), kCount);
    for (int i = 0; i < kCount; ++i) EXPECT_EQ(in[i], out[i]) << engine.queue_name() << " transfer " << i;
  }
}

}  // namespace
}  // namespace deepspeed::ops::aio
