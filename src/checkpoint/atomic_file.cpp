#include "checkpoint/atomic_file.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include <deepspeed/checkpoint.h>
#include <deepspeed/errors.h>

namespace deepspeed::checkpoint {
namespace {

[[noreturn]] void fail(const std::string& what, const std::filesystem::path& path, int err) {
  throw CheckpointError("checkpoint: cannot " + what + " " + path.string() + ": " + std::strerror(err));
}

// Closes a descriptor on every path out, including exceptions.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

}  // namespace

void fsync_directory(const std::filesystem::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) fail("open folder", dir, errno);
  // Some file systems (e.g. certain network mounts) refuse fsync on folders; the data
  // itself was already synced, so that is not worth failing a save for.
  if (::fsync(fd.get()) != 0 && errno != EINVAL && errno != EROFS) fail("sync folder", dir, errno);
}

void write_file_atomically(const std::filesystem::path& path, std::span<const char> bytes) {
  const auto tmp = std::filesystem::path(path.string() + ".tmp");
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) fail("create", tmp, errno);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::unlink(tmp.c_str());
      fail("write", tmp, err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail("sync", tmp, err);
  }
  if (::close(fd.release()) != 0) fail("close", tmp, errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("rename into place", path, errno);
  fsync_directory(path.has_parent_path() ? path.parent_path() : std::filesystem::path("."));
}

std::vector<char> read_whole_file(const std::filesystem::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) throw CheckpointError("checkpoint file " + path.string() + " is missing");
    fail("open", path, errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail("stat", path, errno);
  std::vector<char> out(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::read(fd.get(), out.data() + done, out.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("read", path, errno);
    }
    if (n == 0) break;  // shrank while we read
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return out;
}

int remove_tree(const std::filesystem::path& path) {
  static thread_local int first_error;
  first_error = 0;
  const int rc = ::nftw(
      path.c_str(),
      [](const char* p, const struct stat*, int, struct FTW*) {
        if (::remove(p) != 0 && first_error == 0) first_error = errno;
        return 0;
      },
      16, FTW_DEPTH | FTW_PHYS);
  if (rc != 0 && errno != ENOENT && first_error == 0) first_error = errno;
  return first_error;
}

void replace_directory(const std::filesystem::path& staging, const std::filesystem::path& target) {
  std::error_code ec;
  if (!std::filesystem::exists(target, ec)) {
    if (::rename(staging.c_str(), target.c_str()) != 0) fail("rename into place", target, errno);
  } else if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) {
    remove_tree(staging);  // the old checkpoint; failing to remove it is harmless
  } else if (errno == EINVAL || errno == ENOSYS || errno == ENOTSUP) {
    if (const int err = remove_tree(target)) fail("remove the old", target, err);
    if (::rename(staging.c_str(), target.c_str()) != 0) fail("rename into place", target, errno);
  } else {
    fail("swap in", target, errno);
  }
  fsync_directory(target.parent_path());
}

}  // namespace deepspeed::checkpoint

namespace deepspeed {

void CheckpointStorage::write_file(const std::filesystem::path& path, std::span<const char> bytes) {
  checkpoint::write_file_atomically(path, bytes);
}

std::vector<char> CheckpointStorage::read_file(const std::filesystem::path& path) {
  return checkpoint::read_whole_file(path);
}

}  // namespace deepspeed
