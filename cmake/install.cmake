# install.cmake: what `cmake --install` puts in the prefix (GNUInstallDirs layout):
#   lib/libmallard.so.0.MINOR.PATCH, libmallard.so.0 (SONAME), libmallard.so (dev link), libmallard.a
#   include/mallard/mallard.h, bin/mallard, lib/pkgconfig/mallard.pc,
#   lib/cmake/Mallard/ (find_package(Mallard): Mallard::mallard, Mallard::mallard_static),
#   share/man/man1/mallard.1, share/man/man3/mallard.3, share/doc/mallard/.
include(CMakePackageConfigHelpers)

install(TARGETS mallard mallard_static EXPORT MallardTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS mallard_tool RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/mallard DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h")

set(_mallard_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/Mallard)
install(EXPORT MallardTargets NAMESPACE Mallard:: DESTINATION ${_mallard_cmake_dir})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/MallardConfig.cmake.in
  ${PROJECT_BINARY_DIR}/MallardConfig.cmake INSTALL_DESTINATION ${_mallard_cmake_dir})
# 0.x: the SONAME is libmallard.so.0, so any 0.y satisfies a request for 0.x (x <= y).
write_basic_package_version_file(${PROJECT_BINARY_DIR}/MallardConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/MallardConfig.cmake
  ${PROJECT_BINARY_DIR}/MallardConfigVersion.cmake DESTINATION ${_mallard_cmake_dir})

# mallard.pc, written at install time so that `cmake --install --prefix P` gives P's paths.
# -Wl,-u,malloc: see mallard_static's link options (src/CMakeLists.txt).
set(_pc_libs_private "-Wl,-u,malloc -lpthread")
foreach(lib IN LISTS CMAKE_DL_LIBS)
  string(APPEND _pc_libs_private " -l${lib}")
endforeach()
install(CODE "
  set(PROJECT_VERSION \"${PROJECT_VERSION}\")
  set(pc_prefix \"\${CMAKE_INSTALL_PREFIX}\")
  set(_libdir \"${CMAKE_INSTALL_LIBDIR}\")
  set(_incdir \"${CMAKE_INSTALL_INCLUDEDIR}\")
  if(IS_ABSOLUTE \"\${_libdir}\")
    set(pc_libdir \"\${_libdir}\")
  else()
    set(pc_libdir \"\\\${prefix}/\${_libdir}\")
  endif()
  if(IS_ABSOLUTE \"\${_incdir}\")
    set(pc_includedir \"\${_incdir}\")
  else()
    set(pc_includedir \"\\\${prefix}/\${_incdir}\")
  endif()
  set(pc_libs_private \"${_pc_libs_private}\")
  # One file per prefix: installs to several prefixes may run at once (the tests do).
  string(SHA1 pc_key \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}\")
  set(pc_file \"${PROJECT_BINARY_DIR}/pkgconfig/\${pc_key}/mallard.pc\")
  configure_file(\"${PROJECT_SOURCE_DIR}/cmake/mallard.pc.in\" \"\${pc_file}\" @ONLY)
  if(IS_ABSOLUTE \"\${_libdir}\")
    set(pc_dest \"\${_libdir}/pkgconfig\")
  else()
    set(pc_dest \"\${CMAKE_INSTALL_PREFIX}/\${_libdir}/pkgconfig\")
  endif()
  file(INSTALL DESTINATION \"\${pc_dest}\" TYPE FILE FILES \"\${pc_file}\")
")

install(FILES ${PROJECT_BINARY_DIR}/man/mallard.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PROJECT_BINARY_DIR}/man/mallard.3 DESTINATION ${CMAKE_INSTALL_MANDIR}/man3)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/install.md
  ${PROJECT_SOURCE_DIR}/docs/options.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
