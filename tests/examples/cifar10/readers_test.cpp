// The example's data readers on small files written here in each format: Fashion-MNIST idx
// (gzip and plain), CIFAR-10 binary batches (a directory, its parent, the .tar.gz), and the
// clear errors for missing, truncated and corrupt files.
#include <cstdlib>
#include <filesystem>
#include <functional>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "data/cifar10_binary.h"
#include "data/data_error.h"
#include "data/fashion_mnist.h"
#include "data/image_dataset.h"
#include "data/tar_gz_reader.h"
#include "data_files.h"
#include "multiprocess.h"

namespace fs = std::filesystem;
using namespace cifar10;
using namespace cifar10::testing;
using deepspeed::testing::TempDir;

namespace {

// The DataError message of f(), which must throw one.
std::string data_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const DataError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no DataError thrown";
  return "";
}

#define EXPECT_CONTAINS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << "in: " << (text)

void write_cifar_batches(const std::string& dir, std::size_t per_file) {
  fs::create_directories(dir);
  uint32_t seed = 10;
  for (const auto& f : cifar10_batch_files(Split::kTrain)) write_bytes(dir + "/" + f, cifar10_records(per_file, seed++));
  write_bytes(dir + "/test_batch.bin", cifar10_records(per_file, 99));
}

}  // namespace

TEST(FashionMnist, ReadsGzipIdxFilesIntoNormalisedTensors) {
  TempDir dir;
  write_fashion_mnist(dir.path(), 20, 7);
  auto raw = load_fashion_mnist(dir.path(), Split::kTrain);
  auto expected = synthetic_images(20, 1, 28, 1);
  EXPECT_EQ(raw.channels, 1);
  EXPECT_EQ(raw.height, 28);
  EXPECT_EQ(raw.width, 28);
  EXPECT_EQ(raw.pixels, expected.pixels);
  EXPECT_EQ(raw.labels, expected.labels);
  EXPECT_EQ(raw.classes.at(0), "T-shirt/top");
  EXPECT_EQ(raw.classes.at(9), "Ankle boot");

  ImageDataset data(raw);
  ASSERT_EQ(*data.size(), 20u);
  auto example = data.get(3);
  EXPECT_EQ(example.data.sizes(), (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(example.data.scalar_type(), torch::kFloat32);
  EXPECT_EQ(example.target.scalar_type(), torch::kInt64);
  EXPECT_EQ(example.target.item<int64_t>(), expected.labels[3]);
  // The tutorial's Normalize(0.5, 0.5): byte b -> (b / 255 - 0.5) / 0.5.
  const uint8_t b = expected.pixels[3 * 784 + 28 * 5 + 7];
  EXPECT_NEAR(example.data[0][5][7].item<float>(), (b / 255.0 - 0.5) / 0.5, 1e-6);

  EXPECT_EQ(load_fashion_mnist(dir.path(), Split::kTest).size(), 7u);
  EXPECT_EQ(*ImageDataset(raw, 5).size(), 5u);  // a slice
}

TEST(FashionMnist, ReadsUnpackedIdxFiles) {
  TempDir dir;
  write_fashion_mnist(dir.path(), 4, 3, /*gzip=*/false);
  EXPECT_EQ(load_fashion_mnist(dir.path(), Split::kTrain).labels, synthetic_images(4, 1, 28, 1).labels);
}

TEST(FashionMnist, MissingFileNamesIt) {
  TempDir dir;
  auto msg = data_error([&] { load_fashion_mnist(dir.path() + "/nowhere", Split::kTrain); });
  EXPECT_CONTAINS(msg, dir.path() + "/nowhere/train-images-idx3-ubyte.gz: not found");
  write_fashion_mnist(dir.path(), 4, 3);
  fs::remove(dir.file("t10k-labels-idx1-ubyte.gz"));
  EXPECT_CONTAINS(data_error([&] { load_fashion_mnist(dir.path(), Split::kTest); }), "t10k-labels-idx1-ubyte.gz: not found");
}

TEST(FashionMnist, BadMagicNumber) {
  TempDir dir;
  write_fashion_mnist(dir.path(), 4, 3);
  // A labels file where the images should be.
  fs::copy_file(dir.file("train-labels-idx1-ubyte.gz"), dir.file("train-images-idx3-ubyte.gz"),
                fs::copy_options::overwrite_existing);
  auto msg = data_error([&] { load_fashion_mnist(dir.path(), Split::kTrain); });
  EXPECT_CONTAINS(msg, dir.file("train-images-idx3-ubyte.gz"));
  EXPECT_CONTAINS(msg, "bad magic number 2049, expected 2051");
}

TEST(FashionMnist, TruncatedAndOversizedData) {
  TempDir dir;
  write_fashion_mnist(dir.path(), 4, 3);
  const std::string images = dir.file("train-images-idx3-ubyte.gz");
  // The header promises 4 images, the data holds 3.
  write_bytes(images, gzip_bytes(idx_bytes(2051, {4, 28, 28}, Bytes(3 * 784, 7))));
  auto msg = data_error([&] { load_fashion_mnist(dir.path(), Split::kTrain); });
  EXPECT_CONTAINS(msg, images + ": truncated");
  // One byte too many.
  write_bytes(images, gzip_bytes(idx_bytes(2051, {4, 28, 28}, Bytes(4 * 784 + 1, 7))));
  EXPECT_CONTAINS(data_error([&] { load_fashion_mnist(dir.path(), Split::kTrain); }), images + ": wrong size");
  // A header cut short.
  write_bytes(images, gzip_bytes(Bytes{0, 0, 8, 3, 0, 0}));
  EXPECT_CONTAINS(data_error([&] { load_fashion_mnist(dir.path(), Split::kTrain); }), images + ": truncated");
}

TEST(FashionMnist, TruncatedAndCorruptGzip) {
  TempDir dir;
  write_fashion_mnist(dir.path(), 40, 3);
  const std::string images = dir.file("train-images-idx3-ubyte.gz");
  const Bytes good = read_bytes(images);
  write_bytes(images, Bytes(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(good.size() / 2)));
  EXPECT_CONTAINS(data_error([&] { load_fashion_mnist(dir.path(), Split::kTrain); }), images + ": truncated gzip stream");
  Bytes corrupt = good;
  for (std::size_t i = 20; i < 60; ++i) corrupt[i] ^= 0x5a;
  write_bytes(images, corrupt);
  EXPECT_CONTAINS(data_error([&] { load_fashion_mnist(dir.path(), Split::kTrain); }), images + ": corrupt gzip data");
}

TEST(FashionMnist, LabelsAndImagesMustAgree) {
  TempDir dir;
  write_fashion_mnist(dir.path(), 4, 3);
  write_bytes(dir.file("train-labels-idx1-ubyte.gz"), gzip_bytes(idx_bytes(2049, {5}, Bytes(5, 1))));
  EXPECT_CONTAINS(data_error([&] { load_fashion_mnist(dir.path(), Split::kTrain); }), "5 labels for the 4 images");
  write_bytes(dir.file("train-labels-idx1-ubyte.gz"), gzip_bytes(idx_bytes(2049, {4}, Bytes{1, 2, 10, 3})));
  EXPECT_CONTAINS(data_error([&] { load_fashion_mnist(dir.path(), Split::kTrain); }), "label 10 of sample 2");
}

// The files Debian's dataset-fashion-mnist installs, when present.
TEST(FashionMnist, DebianPackage) {
  if (!fs::exists(std::string(kFashionMnistDefaultDir) + "/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
  auto train = load_fashion_mnist(kFashionMnistDefaultDir, Split::kTrain);
  auto test = load_fashion_mnist(kFashionMnistDefaultDir, Split::kTest);
  EXPECT_EQ(train.size(), 60000u);
  EXPECT_EQ(test.size(), 10000u);
  EXPECT_EQ(train.height, 28);
  std::vector<int> per_class(10);
  for (auto l : test.labels) ++per_class[l];
  for (int c = 0; c < 10; ++c) EXPECT_EQ(per_class[c], 1000) << "class " << c;
}

TEST(Cifar10Binary, ReadsBatchDirectoryAndItsParent) {
  TempDir dir;
  const std::string batches = dir.file(kCifarBatchesDir);
  write_cifar_batches(batches, 3);
  for (const auto& path : {batches, dir.path()}) {
    auto train = load_cifar10(path, Split::kTrain);
    EXPECT_EQ(train.size(), 15u);
    EXPECT_EQ(train.channels, 3);
    EXPECT_EQ(train.height, 32);
    EXPECT_EQ(train.classes.at(0), "plane");
    EXPECT_EQ(load_cifar10(path, Split::kTest).size(), 3u);
  }
  // Record layout: 1 label byte, then 1024 red, 1024 green, 1024 blue bytes, rows of 32.
  const Bytes second = cifar10_records(3, 11);  // data_batch_2.bin
  ImageDataset data(load_cifar10(batches, Split::kTrain));
  auto example = data.get(3 + 1);  // second record of the second file
  EXPECT_EQ(example.data.sizes(), (std::vector<int64_t>{3, 32, 32}));
  EXPECT_EQ(example.target.item<int64_t>(), second[3073]);
  const uint8_t green_5_7 = second[3073 + 1 + 1024 + 5 * 32 + 7];
  EXPECT_NEAR(example.data[1][5][7].item<float>(), (green_5_7 / 255.0 - 0.5) / 0.5, 1e-6);
}

TEST(Cifar10Binary, ReadsTheTarball) {
  TempDir dir;
  std::vector<std::pair<std::string, Bytes>> files = {{"cifar-10-batches-bin/", {}},
                                                      {"cifar-10-batches-bin/batches.meta.txt", Bytes(70, 'a')}};
  uint32_t seed = 10;
  for (const auto& f : cifar10_batch_files(Split::kTrain)) {
    files.push_back({std::string("cifar-10-batches-bin/") + f, cifar10_records(2, seed++)});
  }
  files.push_back({"cifar-10-batches-bin/test_batch.bin", cifar10_records(4, 99)});
  write_bytes(dir.file(kCifarTarball), gzip_bytes(tar_bytes(files)));

  auto from_file = load_cifar10(dir.file(kCifarTarball), Split::kTrain);
  EXPECT_EQ(from_file.size(), 10u);
  auto from_dir = load_cifar10(dir.path(), Split::kTest);  // a directory holding the tarball
  EXPECT_EQ(from_dir.size(), 4u);
  const Bytes test = cifar10_records(4, 99);
  EXPECT_EQ(from_dir.labels[2], test[2 * 3073]);
  EXPECT_EQ(Bytes(from_dir.pixels.begin() + 3072, from_dir.pixels.begin() + 2 * 3072),
            Bytes(test.begin() + 3073 + 1, test.begin() + 2 * 3073));
}

// An archive written by the system's tar (GNU tar writes the real CIFAR-10 tarball).
TEST(Cifar10Binary, ReadsATarballWrittenByTar) {
  if (std::system("tar --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "no tar on this machine";
  TempDir dir;
  write_cifar_batches(dir.file("src/cifar-10-batches-bin"), 2);
  const std::string cmd = "tar -C " + dir.file("src") + " -czf " + dir.file(kCifarTarball) + " cifar-10-batches-bin";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_EQ(load_cifar10(dir.file(kCifarTarball), Split::kTrain).size(), 10u);
  auto entries = read_tar_gz(dir.file(kCifarTarball), [](const std::string&) { return true; });
  EXPECT_EQ(entries.size(), 6u);
  EXPECT_EQ(entries.at("cifar-10-batches-bin/test_batch.bin"), read_bytes(dir.file("src/cifar-10-batches-bin/test_batch.bin")));
}

TEST(Cifar10Binary, MissingWrongSizeAndBadLabel) {
  TempDir dir;
  EXPECT_CONTAINS(data_error([&] { load_cifar10(dir.file("nowhere"), Split::kTrain); }), dir.file("nowhere") + ": not found");
  write_cifar_batches(dir.path(), 2);
  fs::remove(dir.file("data_batch_3.bin"));
  EXPECT_CONTAINS(data_error([&] { load_cifar10(dir.path(), Split::kTrain); }), dir.file("data_batch_3.bin") + ": not found");
  Bytes records = cifar10_records(2, 99);
  records.pop_back();
  write_bytes(dir.file("test_batch.bin"), records);
  auto msg = data_error([&] { load_cifar10(dir.path(), Split::kTest); });
  EXPECT_CONTAINS(msg, dir.file("test_batch.bin") + ": wrong size: 6145 bytes");
  records = cifar10_records(2, 99);
  records[3073] = 10;
  write_bytes(dir.file("test_batch.bin"), records);
  EXPECT_CONTAINS(data_error([&] { load_cifar10(dir.path(), Split::kTest); }), "record 1 has label 10");
}

TEST(Cifar10Binary, CorruptAndIncompleteTarballs) {
  TempDir dir;
  const std::string tarball = dir.file(kCifarTarball);
  Bytes tar = tar_bytes({{"cifar-10-batches-bin/test_batch.bin", cifar10_records(2, 99)}});
  // No training batches in it.
  write_bytes(tarball, gzip_bytes(tar));
  EXPECT_CONTAINS(data_error([&] { load_cifar10(tarball, Split::kTrain); }), tarball + ": the archive has no data_batch_1.bin");
  // A header whose checksum does not match.
  Bytes bad = tar;
  bad[10] ^= 1;
  write_bytes(tarball, gzip_bytes(bad));
  EXPECT_CONTAINS(data_error([&] { load_cifar10(tarball, Split::kTest); }), tarball + ": not a tar archive (bad header checksum)");
  // The archive cut inside the entry's data.
  write_bytes(tarball, gzip_bytes(Bytes(tar.begin(), tar.begin() + 2000)));
  EXPECT_CONTAINS(data_error([&] { load_cifar10(tarball, Split::kTest); }), tarball + ": truncated");
  // Not gzip-compressed tar at all.
  write_bytes(tarball, Bytes(100, 'x'));
  EXPECT_CONTAINS(data_error([&] { load_cifar10(tarball, Split::kTest); }), tarball + ": not a tar archive");
}
