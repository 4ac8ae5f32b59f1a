// Prints the generated part of docs/formats.md (a test keeps them equal):
//   build/test/mtalog-format-docs
#include <cstdio>

#include "format_examples.hpp"

int main()
{
    std::fputs(testing::render_format_docs().c_str(), stdout);
    return 0;
}
