// Finding rank, world size and rendezvous address from the variables a launcher sets.
//
// The deepspeed launcher (and torchrun) set RANK/WORLD_SIZE/LOCAL_RANK/MASTER_*; MPI
// launchers and srun set their own names, and DeepSpeed's multi-node runners export
// MASTER_ADDR/MASTER_PORT to every rank (docs/launcher.md, "Multi-node"). Without an MPI
// library we cannot
// broadcast rank 0's address as DeepSpeed does with mpi4py, so when MASTER_ADDR is missing we
// accept only the case where it is unambiguous: every rank on this host.
#include <cctype>
#include <cstdlib>
#include <optional>

#include <deepspeed/comm.h>
#include <deepspeed/errors.h>

extern char** environ;

namespace deepspeed::comm {
namespace {

using Env = std::map<std::string, std::string>;

std::optional<std::string> lookup(const Env& env, const std::string& name) {
  auto it = env.find(name);
  if (it == env.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

int64_t parse_count(const std::string& name, const std::string& value, int64_t minimum) {
  std::size_t used = 0;
  int64_t v = 0;
  try {
    v = std::stoll(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || v < minimum) {
    throw CommError("environment variable " + name + "='" + value + "': expected an integer >= " +
                    std::to_string(minimum));
  }
  return v;
}

std::optional<int64_t> lookup_count(const Env& env, const std::string& name, int64_t minimum) {
  auto v = lookup(env, name);
  if (!v) return std::nullopt;
  return parse_count(name, *v, minimum);
}

// The first host of a SLURM node list such as "node[03-05,7],other" -> "node03".
std::string first_slurm_host(const std::string& nodelist) {
  std::string host;
  for (std::size_t i = 0; i < nodelist.size(); ++i) {
    char c = nodelist[i];
    if (c == ',') break;
    if (c == '[') {
      std::size_t j = i + 1;
      while (j < nodelist.size() && std::isdigit(static_cast<unsigned char>(nodelist[j]))) {
        host += nodelist[j++];
      }
      break;
    }
    host += c;
  }
  return host;
}

struct MpiNames {
  const char* source;
  std::vector<const char*> rank, size, local_rank, local_size;
};

// Checked in this order; the first whose rank and size are both present wins.
const std::vector<MpiNames>& mpi_flavours() {
  static const std::vector<MpiNames> kFlavours = {
      {"openmpi",
       {"OMPI_COMM_WORLD_RANK"},
       {"OMPI_COMM_WORLD_SIZE"},
       {"OMPI_COMM_WORLD_LOCAL_RANK"},
       {"OMPI_COMM_WORLD_LOCAL_SIZE"}},
      {"mvapich",
       {"MV2_COMM_WORLD_RANK"},
       {"MV2_COMM_WORLD_SIZE"},
       {"MV2_COMM_WORLD_LOCAL_RANK"},
       {"MV2_COMM_WORLD_LOCAL_SIZE"}},
      {"mpich",
       {"PMI_RANK", "PMIX_RANK"},
       {"PMI_SIZE", "PMIX_SIZE"},
       {"MPI_LOCALRANKID", "PALS_LOCAL_RANKID"},
       {"MPI_LOCALNRANKS", "PALS_LOCAL_SIZE"}},
      {"slurm", {"SLURM_PROCID"}, {"SLURM_NTASKS"}, {"SLURM_LOCALID"}, {"SLURM_NTASKS_PER_NODE"}},
  };
  return kFlavours;
}

std::optional<int64_t> first_count(const Env& env, const std::vector<const char*>& names,
                                   int64_t minimum) {
  for (const char* n : names) {
    if (auto v = lookup_count(env, n, minimum)) return v;
  }
  return std::nullopt;
}

void check_consistent(const DistributedEnvironment& e) {
  if (e.rank >= e.world_size) {
    throw CommError("rank " + std::to_string(e.rank) + " is not below world size " +
                    std::to_string(e.world_size) + " (from " + e.source + " variables)");
  }
  if (e.local_rank >= e.local_size && e.local_size > 0) {
    throw CommError("local rank " + std::to_string(e.local_rank) + " is not below local size " +
                    std::to_string(e.local_size) + " (from " + e.source + " variables)");
  }
  if (e.master_port <= 0 || e.master_port > 65535) {
    throw CommError("MASTER_PORT=" + std::to_string(e.master_port) + ": expected a port 1-65535");
  }
}

// DEEPSPEED_RUN_ID becomes part of the store's key prefix: letters, digits, '.', '_' and '-'
// keep it one path component there, and readable in messages.
std::string lookup_run_id(const Env& env) {
  auto id = lookup(env, "DEEPSPEED_RUN_ID");
  if (!id) return {};
  constexpr std::size_t kMaxLength = 128;
  bool ok = id->size() <= kMaxLength;
  for (char c : *id) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-');
  if (!ok) {
    throw CommError("environment variable DEEPSPEED_RUN_ID='" + *id + "': expected at most " +
                    std::to_string(kMaxLength) + " letters, digits, '.', '_' or '-'");
  }
  return *id;
}

}  // namespace

DistributedEnvironment discover_environment(const Env& env, int default_port) {
  DistributedEnvironment e;
  e.run_id = lookup_run_id(env);
  e.master_port = default_port;
  if (auto port = lookup_count(env, "MASTER_PORT", 1)) e.master_port = static_cast<int>(*port);
  if (auto addr = lookup(env, "MASTER_ADDR")) e.master_addr = *addr;

  auto rank = lookup_count(env, "RANK", 0);
  auto world = lookup_count(env, "WORLD_SIZE", 1);
  if (rank && world) {
    e.source = "deepspeed";
    e.rank = *rank;
    e.world_size = *world;
    e.local_rank = lookup_count(env, "LOCAL_RANK", 0).value_or(0);
    e.local_size = lookup_count(env, "LOCAL_SIZE", 1).value_or(e.world_size);
    if (e.world_size > 1 && !lookup(env, "MASTER_ADDR")) {
      throw CommError("RANK and WORLD_SIZE are set but MASTER_ADDR is not: set MASTER_ADDR (and "
                      "MASTER_PORT) to rank 0's address, as the deepspeed launcher does");
    }
    check_consistent(e);
    return e;
  }
  if (rank || world) {
    throw CommError(std::string(rank ? "RANK" : "WORLD_SIZE") + " is set but " +
                    (rank ? "WORLD_SIZE" : "RANK") + " is not: set both (or neither)");
  }

  for (const auto& f : mpi_flavours()) {
    auto r = first_count(env, f.rank, 0);
    auto s = first_count(env, f.size, 1);
    if (!r || !s) continue;
    e.source = f.source;
    e.rank = *r;
    e.world_size = *s;
    e.local_rank = first_count(env, f.local_rank, 0).value_or(0);
    // Without a local size we cannot tell one host from several; assume one (the usual
    // `mpirun -n N` on a workstation). A wrong guess ends in a rendezvous timeout that names
    // the address, and MASTER_ADDR fixes it.
    e.local_size = first_count(env, f.local_size, 1).value_or(e.world_size);
    if (e.source == "slurm" && !lookup(env, "MASTER_ADDR")) {
      if (auto nodes = lookup(env, "SLURM_JOB_NODELIST")) {
        e.master_addr = first_slurm_host(*nodes);
      } else if (auto nodes2 = lookup(env, "SLURM_NODELIST")) {
        e.master_addr = first_slurm_host(*nodes2);
      }
    } else if (!lookup(env, "MASTER_ADDR") && e.world_size > 1 && e.local_size != e.world_size) {
      throw CommError("started by " + std::string(f.source) + " across several hosts but MASTER_ADDR "
                      "is not set: export MASTER_ADDR (and MASTER_PORT) to every rank (the "
                      "deepspeed launcher's MPI runners do)");
    }
    check_consistent(e);
    return e;
  }
  check_consistent(e);
  return e;
}

DistributedEnvironment discover_environment() {
  Env env;
  for (char** p = environ; p && *p; ++p) {
    std::string kv(*p);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return discover_environment(env);
}

}  // namespace deepspeed::comm
