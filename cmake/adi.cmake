# SPDX-License-Identifier: MIT
#
# Shared build settings: the warning set, the sanitizer switch, the third-party packages and the
# helpers that declare a library, a service and a unit test in one line each.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
foreach(dep hiredis libh2o msgpack libjwt libpq libcurl libuv openssl jansson cmocka)
    string(TOUPPER "${dep}" var)
    pkg_check_modules(${var} REQUIRED IMPORTED_TARGET GLOBAL ${dep})
endforeach()

add_library(adi_defaults INTERFACE)
target_compile_definitions(adi_defaults INTERFACE _POSIX_C_SOURCE=200809L _DEFAULT_SOURCE)
target_link_libraries(adi_defaults INTERFACE Threads::Threads)

add_library(adi_warnings INTERFACE)
target_compile_options(adi_warnings INTERFACE
    -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
    -Wold-style-definition -Wformat=2 -Wvla -Wundef -Wwrite-strings
    -Wimplicit-fallthrough -Wcast-qual)

if(ADI_SANITIZE)
    add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                        -fno-omit-frame-pointer)
    add_link_options(-fsanitize=address,undefined)
endif()

# ADI_FUZZ: every object gets libFuzzer's coverage instrumentation and ASan+UBSan (tests/fuzz links
# the targets with -fsanitize=fuzzer). libFuzzer comes with clang only.
if(ADI_FUZZ)
    if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
        message(FATAL_ERROR "ADI_FUZZ needs clang: configure with CC=clang")
    endif()
    add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
                        -fno-omit-frame-pointer)
    add_link_options(-fsanitize=address,undefined)
endif()

# adi_library(<name> SOURCES ... DEPS ... PRIVATE_DEPS ...)
function(adi_library name)
    cmake_parse_arguments(A "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
    add_library(adi_${name} STATIC ${A_SOURCES})
    add_library(adi::${name} ALIAS adi_${name})
    target_include_directories(adi_${name} PUBLIC include PRIVATE src)
    target_link_libraries(adi_${name} PUBLIC adi_defaults ${A_DEPS}
                          PRIVATE adi_warnings ${A_PRIVATE_DEPS})
endfunction()

# adi_service(<name> SOURCES ... DEPS ...): one binary per service, installed with its migrations.
function(adi_service name)
    cmake_parse_arguments(A "" "OUTPUT" "SOURCES;DEPS" ${ARGN})
    set(target "adi-${name}")
    add_executable(${target} ${A_SOURCES})
    target_link_libraries(${target} PRIVATE adi_defaults adi_warnings ${A_DEPS})
    target_include_directories(${target} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
    install(TARGETS ${target} RUNTIME DESTINATION bin)
    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/migrations)
        install(DIRECTORY migrations/ DESTINATION share/adinsights/${name}/migrations)
    endif()
endfunction()

# adi_unit_test(<name> SOURCES ... LIBS ...): a cmocka executable registered with ctest.
function(adi_unit_test name)
    cmake_parse_arguments(A "" "" "SOURCES;LIBS" ${ARGN})
    if(NOT A_SOURCES)
        set(A_SOURCES test_${name}.c)
    endif()
    add_executable(test_${name} ${A_SOURCES})
    target_link_libraries(test_${name} PRIVATE adi_defaults adi_warnings PkgConfig::CMOCKA ${A_LIBS})
    add_test(NAME unit.${name} COMMAND test_${name})
    set_tests_properties(unit.${name} PROPERTIES LABELS unit TIMEOUT 60)
endfunction()

# The test stack: a real redis-server and PostgreSQL started on free loopback ports in a temporary
# folder by the ctest fixture "stack" (tests/harness/stack.sh), and the whole suite (every service
# and the gateway, built here) by the fixture "suite" (tests/harness/suite.sh). The harness writes
# the addresses to ${ADI_TEST_DIR}/env, which tests/harness/with-env.sh exports before a test runs.
set(ADI_TEST_DIR ${CMAKE_BINARY_DIR}/test-stack)

# adi_integration_test(<name> COMMAND ...): runs against the real Redis and PostgreSQL.
function(adi_integration_test name)
    cmake_parse_arguments(A "" "TIMEOUT" "COMMAND" ${ARGN})
    if(NOT A_TIMEOUT)
        set(A_TIMEOUT 120)
    endif()
    add_test(NAME integration.${name}
             COMMAND ${PROJECT_SOURCE_DIR}/tests/harness/with-env.sh ${ADI_TEST_DIR} ${A_COMMAND})
    set_tests_properties(integration.${name} PROPERTIES
        LABELS integration FIXTURES_REQUIRED stack TIMEOUT ${A_TIMEOUT})
endfunction()

# adi_e2e_test(<name> COMMAND ...): runs against the whole suite over HTTP.
function(adi_e2e_test name)
    cmake_parse_arguments(A "" "TIMEOUT" "COMMAND" ${ARGN})
    if(NOT A_TIMEOUT)
        set(A_TIMEOUT 300)
    endif()
    add_test(NAME e2e.${name}
             COMMAND ${PROJECT_SOURCE_DIR}/tests/harness/with-env.sh ${ADI_TEST_DIR} ${A_COMMAND})
    set_tests_properties(e2e.${name} PROPERTIES
        LABELS e2e FIXTURES_REQUIRED "stack;suite" TIMEOUT ${A_TIMEOUT} RUN_SERIAL TRUE
        WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}
        ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
endfunction()
