// Catch2's main, and a way for a test program to run again as a helper
// process: a test forks and execs its own program with "--test-child" (a
// child of a process with other threads must exec before it allocates; see
// exec_args), and the program's registered child main runs instead of the
// tests.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstring>

int (*mtalog_test_child_main)(int argc, char **argv) = nullptr;

int main(int argc, char **argv)
{
    if (argc >= 2 && std::strcmp(argv[1], "--test-child") == 0 && mtalog_test_child_main != nullptr)
        return mtalog_test_child_main(argc - 2, argv + 2);
    return Catch::Session().run(argc, argv);
}
