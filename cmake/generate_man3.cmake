# generate_man3.cmake: writes mallard(3) from docs/man/mallard.3.in, its OPTIONS section from the
# option table (`mallard options --man`, the generator of docs/options.md).
# cmake -DTOOL=<mallard> -DTEMPLATE=<mallard.3.in> -DOUT=<mallard.3> -DVERSION=<x.y.z> -P this
cmake_minimum_required(VERSION 3.25)
execute_process(COMMAND ${TOOL} options --man OUTPUT_VARIABLE options RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${TOOL} options --man failed: ${rc}")
endif()
file(READ ${TEMPLATE} page)
string(REPLACE "@OPTIONS@\n" "${options}" page "${page}")
string(REPLACE "@VERSION@" "${VERSION}" page "${page}")
file(WRITE ${OUT}.tmp "${page}")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
file(REMOVE ${OUT}.tmp)
