# cmake --install: headers under include/deepspeed/, the library, the tools (their own
# CMakeLists.txt), the user's guide (README.md and docs/ under share/doc/DeepSpeed, so that the README's links hold, where
# `deepspeed --help` points), and a package config so that another project does
# find_package(DeepSpeed) and links DeepSpeed::deepspeed.
include(CMakePackageConfigHelpers)
install(TARGETS deepspeed EXPORT DeepSpeedTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY include/deepspeed DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_BINARY_DIR}/include/deepspeed/version.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/deepspeed)
install(EXPORT DeepSpeedTargets NAMESPACE DeepSpeed::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/DeepSpeed)
configure_package_config_file(cmake/DeepSpeedConfig.cmake.in
  ${PROJECT_BINARY_DIR}/DeepSpeedConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/DeepSpeed)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/DeepSpeedConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/DeepSpeedConfig.cmake ${PROJECT_BINARY_DIR}/DeepSpeedConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/DeepSpeed)
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs DESTINATION ${CMAKE_INSTALL_DOCDIR} FILES_MATCHING PATTERN "*.md")
