#include "checkpoint/zero_partition_layout.h"

#include <deepspeed/errors.h>

#include "checkpoint/ivalue_conversion.h"

namespace deepspeed::checkpoint {

c10::impl::GenericDict to_ivalue(const ZeroPartitionLayout& layout) {
  auto dict = make_string_dict();
  dict.insert("numels", c10::List<int64_t>(layout.numels));
  dict.insert("groups", c10::List<int64_t>(layout.groups));
  dict.insert("bucket_elements", layout.bucket_elements);
  if (!layout.classes.empty()) dict.insert("bucket_classes", c10::List<int64_t>(layout.classes));
  c10::List<std::string> names;
  for (const auto& n : layout.names) names.push_back(n);
  dict.insert("names", names);
  return dict;
}

ZeroPartitionLayout read_zero_partition_layout(const c10::impl::GenericDict& optimizer_state_dict,
                                               const std::string& file) {
  const auto value = dict_at(optimizer_state_dict, "ds_cpp_layout", file + ": optimizer_state_dict");
  if (!value.isGenericDict()) throw CheckpointError(file + ": ds_cpp_layout is not a dict");
  const auto dict = value.toGenericDict();
  const std::string where = file + ": ds_cpp_layout";
  ZeroPartitionLayout layout;
  layout.numels = int_list(dict_at(dict, "numels", where), where + ".numels");
  layout.groups = int_list(dict_at(dict, "groups", where), where + ".groups");
  layout.bucket_elements = int_at(dict, "bucket_elements", where);
  const auto count = layout.numels.size();
  if (layout.groups.size() != count) {
    throw CheckpointError(where + ".groups has " + std::to_string(layout.groups.size()) + " entries for " +
                          std::to_string(count) + " parameters");
  }
  if (dict.contains("names")) {
    const auto names = dict.at("names");
    if (!names.isList() || names.toListRef().size() != count) {
      throw CheckpointError(where + ".names should name every parameter (" + std::to_string(count) + ")");
    }
    for (const auto& n : names.toListRef()) {
      if (!n.isString()) throw CheckpointError(where + ".names should hold strings, found " + n.tagKind());
      layout.names.push_back(n.toStringRef());
    }
  }
  if (dict.contains("bucket_classes")) {
    layout.classes = int_list(dict.at("bucket_classes"), where + ".bucket_classes");
    if (layout.classes.size() != count) {
      throw CheckpointError(where + ".bucket_classes has " + std::to_string(layout.classes.size()) +
                            " entries for " + std::to_string(count) + " parameters");
    }
  }
  return layout;
}

}  // namespace deepspeed::checkpoint
