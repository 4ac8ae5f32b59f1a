// Prints the mtalog option table as the Markdown docs/configuration.md carries:
//   build/plugin/mtalog-options > table.md
#include <cstdio>

#include "mtalog_options.hpp"

int main()
{
    std::fputs(mtacfg::render_options_markdown().c_str(), stdout);
    return 0;
}
