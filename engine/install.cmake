# The installed library: one shared libravlt.so holding the engine, the
# runtime, the formats and the base layer (their objects linked in whole
# from the static libraries; only RAVLT_API symbols exported), the public headers, and a CMake package for find_package(ravlt).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

add_library(ravlt_library SHARED ${CMAKE_CURRENT_LIST_DIR}/src/library.cpp)
set_target_properties(ravlt_library PROPERTIES OUTPUT_NAME ravlt EXPORT_NAME ravlt VERSION ${PROJECT_VERSION}
                                               SOVERSION ${PROJECT_VERSION_MAJOR})
target_link_libraries(ravlt_library PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,ravlt_engine>")
target_include_directories(ravlt_library INTERFACE
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/engine/include>
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/base/include>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_compile_features(ravlt_library INTERFACE cxx_std_20)
add_library(ravlt::ravlt ALIAS ravlt_library)

install(TARGETS ravlt_library EXPORT ravltTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
if(RAVLT_BUILD_TOOLS)
  install(TARGETS ravlt RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
# The public headers: the engine's API and the base layer's (error, dtype,
# export macro), into one include/ravlt/.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/engine/include/ravlt ${PROJECT_SOURCE_DIR}/base/include/ravlt
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT ravltTargets NAMESPACE ravlt:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ravlt)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/ravltConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/ravltConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ravlt)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/ravltConfigVersion.cmake
                                 COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/ravltConfig.cmake ${PROJECT_BINARY_DIR}/ravltConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ravlt)
