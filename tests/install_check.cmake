# Installs the build into a fresh prefix and checks that the daemon, the
# ioctl header and the man page land where users look for them.
# Usage: cmake -DBUILD_DIR=... -DPREFIX=... -P install_check.cmake
file(REMOVE_RECURSE ${PREFIX})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${PREFIX}
                RESULT_VARIABLE result OUTPUT_QUIET)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "cmake --install failed: ${result}")
endif()
foreach(path bin/taskfs include/taskfs_ioctl.h share/man/man1/taskfs.1)
  if(NOT EXISTS ${PREFIX}/${path})
    message(FATAL_ERROR "not installed: ${path}")
  endif()
endforeach()
execute_process(COMMAND ${PREFIX}/bin/taskfs --version
                RESULT_VARIABLE result OUTPUT_VARIABLE version)
if(NOT result EQUAL 0 OR NOT version MATCHES "^taskfs ")
  message(FATAL_ERROR "installed taskfs --version: ${result} ${version}")
endif()
file(REMOVE_RECURSE ${PREFIX})
