# Writes OUT, the C++ header that embeds the demo in the daemon, from its one
# home: examples/demo.tasks (DEMO) and examples/greeting.txt (GREETING).
# The manifest is embedded from the line after the first line that is just
# "#": what comes before is demo.tasks's note about itself. The bytes are
# copied as they are, as \x escapes, so any text survives. Run at build time:
#   cmake -DDEMO=... -DGREETING=... -DOUT=... -P embed_demo.cmake
foreach(var DEMO GREETING OUT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "embed_demo.cmake: ${var} not set")
  endif()
endforeach()

file(READ ${DEMO} demo_text)
string(FIND "${demo_text}" "\n#\n" header_end)
if(header_end EQUAL -1)
  message(FATAL_ERROR "${DEMO}: no line '#' ends the note at its top")
endif()
math(EXPR demo_start "${header_end} + 3")

# The bytes of path from offset on as C string literals, 16 bytes a line
# ("\x23\x20..." "..."), and their count.
function(taskfs_c_bytes out count path offset)
  file(READ ${path} hex OFFSET ${offset} HEX)
  string(LENGTH "${hex}" digits)
  math(EXPR bytes "${digits} / 2")
  string(REPEAT "[0-9a-f]" 32 line)
  string(REGEX REPLACE "(${line})" "\\1\n" hex "${hex}")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "\\\\x\\1" text "${hex}")
  string(REGEX REPLACE "\n$" "" text "${text}")
  string(REPLACE "\n" "\"\n    \"" text "${text}")
  set(${out} "\"${text}\"" PARENT_SCOPE)
  set(${count} ${bytes} PARENT_SCOPE)
endfunction()
taskfs_c_bytes(demo_text demo_size ${DEMO} ${demo_start})
taskfs_c_bytes(greeting_text greeting_size ${GREETING} 0)

set(text "// Generated at build time by fs/embed_demo.cmake from examples/demo.tasks
// (from the line after its note) and examples/greeting.txt. Do not edit.
#ifndef TASKFS_FS_EMBEDDED_DEMO_H_
#define TASKFS_FS_EMBEDDED_DEMO_H_

#include <string_view>

namespace taskfs::fs::embedded {

inline constexpr std::string_view kDemoManifest(
    ${demo_text},
    ${demo_size});

inline constexpr std::string_view kDemoGreeting(
    ${greeting_text},
    ${greeting_size});

}  // namespace taskfs::fs::embedded

#endif  // TASKFS_FS_EMBEDDED_DEMO_H_
")
file(WRITE ${OUT} "${text}")
