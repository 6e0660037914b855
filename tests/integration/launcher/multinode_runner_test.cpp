// Multi-node runners for real on this machine: the ssh runner against an sshd the test
// starts on a loopback port (two host names, node-a and node-b, that ssh resolves to
// 127.0.0.1 and 127.0.0.2; key-based login), and OpenMPI's mpirun. Skipped, visibly, when
// sshd or mpirun is not installed (scripts/packages.txt lists both).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "launcher/shell_quote.h"

namespace fs = std::filesystem;
using deepspeed::launcher::shell_join;
using deepspeed::launcher::shell_quote;

namespace {

const std::string kDeepspeed = DS_BINARY_DIR "/bin/deepspeed";
const std::string kProbe = DS_BINARY_DIR "/bin/ds_rank_probe";
const std::string kAllReduceProbe = DS_BINARY_DIR "/bin/ds_allreduce_probe";

struct Result {
  int rc = -1;
  std::string out, err;
  double seconds = 0;
};

std::string slurp(const fs::path& p) {
  std::stringstream ss;
  ss << std::ifstream(p).rdbuf();
  return ss.str();
}

Result run_shell(const std::string& cmd, const fs::path& dir) {
  const auto t0 = std::chrono::steady_clock::now();
  const int status = std::system(("cd " + shell_quote(dir.string()) + " && timeout -s KILL 40 " + cmd + " >" +
                                  (dir / "out").string() + " 2>" + (dir / "err").string() + " </dev/null").c_str());
  Result r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(dir / "out");
  r.err = slurp(dir / "err");
  return r;
}

bool port_open(const char* addr, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, addr, &sa.sin_addr);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
  ::close(fd);
  return ok;
}

bool alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto p = line.rfind(')');
  return p == std::string::npos || p + 2 >= line.size() || line[p + 2] != 'Z';
}

// An sshd on 127.0.0.1/127.0.0.2:<port> accepting one generated key, plus an ssh config
// that maps node-a/node-b to those addresses.
class LoopbackSshd : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists("/usr/sbin/sshd") || !fs::exists("/usr/bin/ssh-keygen"))
      GTEST_SKIP() << "openssh-server is not installed (scripts/packages.txt)";
    dir_ = fs::temp_directory_path() / ("ds_sshd_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    port_ = 22000 + static_cast<int>(::getpid() % 1000);
    const std::string d = dir_.string();
    ASSERT_EQ(std::system(("ssh-keygen -q -t ed25519 -N '' -f " + d + "/host_key && ssh-keygen -q -t ed25519 -N '' -f " + d +
                           "/user_key && cp " + d + "/user_key.pub " + d + "/authorized_keys").c_str()), 0);
    std::ofstream(dir_ / "sshd_config") << "Port " << port_ << "\nListenAddress 127.0.0.1\nListenAddress 127.0.0.2\n"
                                        << "HostKey " << d << "/host_key\nAuthorizedKeysFile " << d << "/authorized_keys\n"
                                        << "PidFile " << d << "/sshd.pid\nStrictModes no\nUsePAM no\n"
                                        << "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                                        << "PermitRootLogin prohibit-password\nAcceptEnv none\n";
    std::ofstream(dir_ / "ssh_config") << "Host node-a\n  HostName 127.0.0.1\nHost node-b\n  HostName 127.0.0.2\n"
                                       << "Host *\n  IdentityFile " << d << "/user_key\n  IdentitiesOnly yes\n"
                                       << "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"
                                       << "  BatchMode yes\n  LogLevel ERROR\n";
    std::error_code ec;
    fs::create_directories("/run/sshd", ec);  // sshd's privilege-separation directory
    sshd_ = ::fork();
    ASSERT_GE(sshd_, 0);
    if (sshd_ == 0) {
      const std::string cfg = d + "/sshd_config", log = d + "/sshd.log";
      ::execl("/usr/sbin/sshd", "/usr/sbin/sshd", "-D", "-f", cfg.c_str(), "-E", log.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 100 && !(port_open("127.0.0.1", port_) && port_open("127.0.0.2", port_)); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE(port_open("127.0.0.2", port_)) << slurp(dir_ / "sshd.log");
    std::ofstream(dir_ / "hostfile") << "node-a slots=1\nnode-b slots=2\n";
  }
  void TearDown() override {
    if (sshd_ > 0) {
      ::kill(sshd_, SIGTERM);
      int status;
      ::waitpid(sshd_, &status, 0);
    }
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  std::string runner(const std::string& extra) const {
    return shell_join({kDeepspeed, "-H", (dir_ / "hostfile").string(), "--launcher", "ssh", "--ssh_port",
                       std::to_string(port_), "--launcher_args", "-F " + (dir_ / "ssh_config").string(),
                       "--master_addr", "127.0.0.1", "--master_port", std::to_string(29500 + ::getpid() % 1000)}) +
           " " + extra;
  }
  fs::path dir_;
  int port_ = 0;
  pid_t sshd_ = -1;
};

TEST_F(LoopbackSshd, TwoNodeJobOverSsh) {
  std::ofstream(dir_ / ".deepspeed_env") << "DS_TEST_MSG=it's \"two\" words $HOME\n";
  const auto r = run_shell(runner(shell_join({kProbe, "--env", "RANK", "LOCAL_RANK", "WORLD_SIZE", "CROSS_RANK",
                                              "CROSS_SIZE", "DS_TEST_MSG"})), dir_);
  ASSERT_EQ(r.rc, 0) << r.out << r.err << slurp(dir_ / "sshd.log");
  EXPECT_NE(r.out.find("node-a: [rank0]: RANK=0\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("node-b: [rank1]: RANK=1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("node-b: [rank2]: LOCAL_RANK=1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("node-b: [rank2]: CROSS_RANK=1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("node-a: [rank0]: WORLD_SIZE=3\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("node-a: [rank0]: CROSS_SIZE=2\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("node-b: [rank1]: DS_TEST_MSG=it's \"two\" words $HOME\n"), std::string::npos) << r.out;
}

TEST_F(LoopbackSshd, TwoNodeJobRendezvousesAndAllReduces) {
  const auto r = run_shell(runner(kAllReduceProbe), dir_);
  ASSERT_EQ(r.rc, 0) << r.out << r.err << slurp(dir_ / "sshd.log");
  // 3 ranks over 2 "hosts": 1 + 2 + 3.
  EXPECT_NE(r.out.find("node-a: [rank0]: ALLREDUCE rank=0 world=3 source=deepspeed sum=6\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("node-b: [rank1]: ALLREDUCE rank=1 world=3 source=deepspeed sum=6\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("node-b: [rank2]: ALLREDUCE rank=2 world=3 source=deepspeed sum=6\n"), std::string::npos) << r.out;
}

TEST_F(LoopbackSshd, FailingRemoteRankStopsEveryNode) {
  const auto pids = dir_ / "pids";
  fs::create_directories(pids);
  const auto r = run_shell(runner(shell_join({kProbe, "--pid-dir", pids.string(), "--exit-rank", "2", "--exit-code",
                                              "3", "--delay-ms", "500", "--sleep-ms", "60000"})), dir_);
  EXPECT_EQ(r.rc, 3) << r.out << r.err;
  EXPECT_LT(r.seconds, 15.0);
  std::vector<pid_t> rank_pids;
  for (const auto& e : fs::directory_iterator(pids)) {
    pid_t p = 0;
    std::ifstream(e.path()) >> p;
    rank_pids.push_back(p);
  }
  EXPECT_EQ(rank_pids.size(), 3u);
  // node-a's launcher learns through its closed ssh session; give it a moment.
  for (int i = 0; i < 150; ++i) {
    bool any = false;
    for (pid_t p : rank_pids) any = any || alive(p);
    if (!any) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (pid_t p : rank_pids) EXPECT_FALSE(alive(p)) << "rank process " << p << " left behind";
}

TEST(OpenMpiRunner, RanksReadOmpiVariables) {
  if (!fs::exists("/usr/bin/mpirun") || !fs::exists("/usr/bin/ompi_info"))
    GTEST_SKIP() << "openmpi-bin is not installed (scripts/packages.txt)";
  const fs::path dir = fs::temp_directory_path() / ("ds_mpi_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "hostfile") << "localhost slots=2\n";
  const auto r = run_shell(shell_join({kDeepspeed, "-H", (dir / "hostfile").string(), "--launcher", "openmpi",
                                       "--force_multi", "--launcher_args",
                                       "--allow-run-as-root --oversubscribe --mca btl_tcp_if_include lo", kProbe,
                                       "--env", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "MASTER_ADDR"}),
                           dir);
  std::error_code ec;
  fs::remove_all(dir, ec);
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("OMPI_COMM_WORLD_RANK=0\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("OMPI_COMM_WORLD_RANK=1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("OMPI_COMM_WORLD_SIZE=2\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("MASTER_ADDR=127.0.0.1\n"), std::string::npos) << r.out;
}

TEST(OpenMpiRunner, RanksDiscoverTheirRankAndAllReduce) {
  if (!fs::exists("/usr/bin/mpirun") || !fs::exists("/usr/bin/ompi_info"))
    GTEST_SKIP() << "openmpi-bin is not installed (scripts/packages.txt)";
  const fs::path dir = fs::temp_directory_path() / ("ds_mpi_ar_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "hostfile") << "localhost slots=2\n";
  const auto r = run_shell(shell_join({kDeepspeed, "-H", (dir / "hostfile").string(), "--launcher", "openmpi",
                                       "--force_multi", "--master_port", std::to_string(29500 + ::getpid() % 1000),
                                       "--launcher_args", "--allow-run-as-root --oversubscribe --mca btl_tcp_if_include lo",
                                       kAllReduceProbe}),
                           dir);
  std::error_code ec;
  fs::remove_all(dir, ec);
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("ALLREDUCE rank=0 world=2 source=openmpi sum=3\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ALLREDUCE rank=1 world=2 source=openmpi sum=3\n"), std::string::npos) << r.out;
}

}  // namespace
