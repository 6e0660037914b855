// Walks the regular files of a .tar.gz (ustar, GNU and pax tar as `tar czf` writes them),
// reading only the entries the caller wants, straight from the gzip stream: the CIFAR-10
// tarball is read without unpacking it and without libarchive.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace cifar10 {

// Returns name -> content for every regular file whose name `wanted` accepts. Throws
// DataError naming the archive for a bad header checksum or a truncated archive.
std::map<std::string, std::vector<uint8_t>> read_tar_gz(const std::string& path,
                                                        const std::function<bool(const std::string&)>& wanted);

}  // namespace cifar10
