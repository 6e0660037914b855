# The layers of libdeepspeed, and the check that keeps them.
#
# Each object library says, with ds_layer(), the folders it is made of, the public headers
# (include/deepspeed/) it owns and the libraries it builds on. Those are its link dependencies
# (their usage requirements come with them) and the only headers it may include besides its own:
# an include that goes up or sideways (checkpoint code including the engine's headers, ZeRO
# including the engine's) fails the build with the file, the line and what the library may use
# (cmake/check_layering.py, run before libdeepspeed is linked, and the test layering.tree).
# Public headers no library claims (errors.h, torch_compat.h, version.h, ops_config.h) are for
# everyone. NAMESPACES are the namespaces the library's code may open (docs/development.md,
# "Namespaces"): a `*_detail` (or `detail`) nested in one of them and foreign namespaces
# (torch::, c10::: forward declarations) are allowed too; "deepspeed::ops::*" allows any one
# below deepspeed::ops.

find_package(Python3 COMPONENTS Interpreter)

# ds_layer(<target> FOLDERS <dir>... [HEADERS <public header>...] [USES <library>...]
#          [NAMESPACES <namespace>...])   (default: deepspeed)
function(ds_layer target)
  cmake_parse_arguments(L "" "" "FOLDERS;HEADERS;USES;NAMESPACES" ${ARGN})
  if(NOT L_NAMESPACES)
    set(L_NAMESPACES deepspeed)
  endif()
  string(JOIN "," _folders ${L_FOLDERS})
  string(JOIN "," _headers ${L_HEADERS})
  string(JOIN "," _uses ${L_USES})
  string(JOIN "," _namespaces ${L_NAMESPACES})
  set_property(GLOBAL APPEND_STRING PROPERTY DS_LAYER_TABLE
               "${target} folders=${_folders} headers=${_headers} uses=${_uses} namespaces=${_namespaces}\n")
  foreach(_used ${L_USES})
    # The ops' usage requirements are given where they are needed (the top-level
    # CMakeLists.txt): their OpenMP and architecture flags must not reach the sources that
    # share the precompiled header.
    # A library this build leaves out (ds_ops_aio without liburing) has no target to link.
    if(TARGET ${target} AND TARGET ${_used} AND NOT _used MATCHES "^ds_ops_")
      target_link_libraries(${target} PUBLIC ${_used})
    endif()
  endforeach()
endfunction()

# After every ds_layer(): writes the table and makes libdeepspeed depend on the check.
function(ds_check_layers)
  if(NOT Python3_Interpreter_FOUND)
    message(WARNING "deepspeed-cpp: no python3: the layering check (cmake/check_layering.py) is skipped")
    return()
  endif()
  get_property(_table GLOBAL PROPERTY DS_LAYER_TABLE)
  set(_file ${PROJECT_BINARY_DIR}/layers.txt)
  file(WRITE ${_file}.new "# written by cmake/DeepSpeedLayers.cmake\n${_table}")
  # Rewritten only when it changes (configure_file keeps an unchanged file as it is), so that
  # an unchanged tree is not checked again.
  configure_file(${_file}.new ${_file} COPYONLY)
  set(DS_LAYER_TABLE_FILE ${_file} PARENT_SCOPE)
  file(GLOB_RECURSE _sources CONFIGURE_DEPENDS
    ${PROJECT_SOURCE_DIR}/src/*.h ${PROJECT_SOURCE_DIR}/src/*.cpp
    ${PROJECT_SOURCE_DIR}/ops/*.h ${PROJECT_SOURCE_DIR}/ops/*.cpp ${PROJECT_SOURCE_DIR}/ops/*.cu)
  set(_stamp ${PROJECT_BINARY_DIR}/layers.checked)
  add_custom_command(OUTPUT ${_stamp}
    COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/cmake/check_layering.py ${_file} ${PROJECT_SOURCE_DIR}
    COMMAND ${CMAKE_COMMAND} -E touch ${_stamp}
    DEPENDS ${_sources} ${_file} ${PROJECT_SOURCE_DIR}/cmake/check_layering.py
    COMMENT "Checking that each library includes only the layers below it, in its own namespaces"
    VERBATIM)
  add_custom_target(ds_layering DEPENDS ${_stamp})
  add_dependencies(deepspeed ds_layering)
endfunction()
